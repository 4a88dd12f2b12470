"""Turning a py-spy profile into "where do the microseconds of one request go".

py-spy (``record --format raw``) writes collapsed stacks: ``frame;frame;...;leaf N``,
each frame ``function (path:line)``. Samples are taken only while a thread runs (idle
threads are skipped), so a function's share of samples is its share of the gateway's
CPU time; multiplied by the CPU time per request measured beside the profile, it becomes
microseconds per request, the unit a hot-path fix is judged in.

Two views: *self* time per function (where the CPU actually is) and self time summed per
package (``gateway.shield``, ``starlette``, ``prometheus_client``, ``asyncio``...), which
says whose code to look at first.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_LOOP_FRAMES = ("Runner.run ", "run_until_complete ", "BaseEventLoop.run_forever ")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^()]*?)(?::\d+)?\)$")


@dataclass
class Profile:
    samples: int
    self_by_function: Counter[str]
    self_by_package: Counter[str]
    inclusive_by_function: Counter[str]


def package_of(path: str) -> str:
    """A short owner name for a source path: ``gateway.shield``, ``starlette``, ``asyncio``.

    py-spy prints paths relative to their ``sys.path`` entry (``starlette/routing.py``,
    ``asyncio/tasks.py``), or absolute ones for files outside it.
    """
    path = path.replace("\\", "/")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/lib/python3" in path:
        path = path.split("/lib/python3", 1)[1].partition("/")[2]
    elif "/gateway/" in path:
        path = "gateway/" + path.split("/gateway/", 1)[1]
    parts = path.split("/")
    if parts[0] == "gateway" and len(parts) > 1:
        return "gateway." + parts[1].removesuffix(".py")
    if path.startswith("<"):
        return "(interpreter)"
    return parts[0].removesuffix(".py")


def _short(func: str, path: str) -> str:
    path = path.replace("\\", "/")
    for marker in ("site-packages/", "/lib/python3.", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = path.split("/", 1)[1] if "/" in path else path
            break
    return f"{func} ({path})"


def parse(raw: str) -> Profile:
    total = 0
    self_fn: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            if match:
                frames.append((match["func"], match["path"]))
        if not frames:
            continue
        total += n
        func, path = frames[-1]
        self_fn[_short(func, path)] += n
        self_pkg[package_of(path)] += n
        for name in {_short(f, p) for f, p in frames}:
            incl[name] += n
    return Profile(total, self_fn, self_pkg, incl)


def report(profile: Profile, cpu_us_per_request: float, top: int = 15) -> list[str]:
    """Lines of text: top self-time functions and packages, in µs per request."""
    if profile.samples == 0:
        return ["(no samples)"]
    per = cpu_us_per_request / profile.samples
    lines = [f"CPU per request {cpu_us_per_request:.0f} µs over {profile.samples} samples"]
    lines.append("  self time by package:")
    for name, n in profile.self_by_package.most_common(12):
        lines.append(f"    {n * per:7.1f} µs  {n / profile.samples:6.1%}  {name}")
    lines.append("  self time by function:")
    for name, n in profile.self_by_function.most_common(top):
        lines.append(f"    {n * per:7.1f} µs  {n / profile.samples:6.1%}  {name}")
    loop = sum(n for name, n in profile.self_by_function.items() if name.startswith(_LOOP_FRAMES))
    if loop:
        lines.append(
            f"  ({loop * per:.1f} µs of that is self time of the asyncio runner frame: uvloop's "
            "C event loop, i.e. epoll, socket reads/writes and callback dispatch, which py-spy "
            "charges to the last Python frame)"
        )
    gateway = [
        (name, n)
        for name, n in profile.inclusive_by_function.most_common()
        if "gateway/" in name and "__main__" not in name and "server.py" not in name
    ][:top]
    if gateway:
        lines.append("  inclusive time of gateway functions:")
        for name, n in gateway:
            lines.append(f"    {n * per:7.1f} µs  {n / profile.samples:6.1%}  {name}")
    return lines
