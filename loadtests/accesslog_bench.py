"""µs of CPU per access line: the ``logging`` path the gateway used before vs its own.

In process, no server: each side logs ``--lines`` access lines of a shield hit on
``/rtbs.json`` into the same kind of destination (``--to``: a file in a temporary folder,
a pipe drained by ``cat`` in another process, or ``/dev/null``), ``--per-iteration`` lines
per event-loop iteration (as many requests finishing in one iteration), and charges this
process's CPU time (``time.process_time``: waiting for the other core does not count) to
the lines, less what the same loop costs without logging; the best of ``--rounds`` is
kept, since contention only ever adds.

* ``logging``: ``logging.getLogger("gateway.access").info("request", extra=...)``
  through the gateway's JSON (or text) formatter and one ``StreamHandler``, exactly what
  the request middleware did before: a record, a dict, the redaction pre-check, the
  handler lock and one write per line;
* ``gateway``: gateway/observe/access_log.py: one msgspec call into the pending buffer,
  one non-blocking write per loop iteration.

A busy machine makes both numbers larger; their ratio is the figure to read.

    uv run python loadtests/accesslog_bench.py [--to file|pipe|devnull] [--format json|text]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.observe import logs
from gateway.observe.access_log import AccessLog

ARGS = ("/rtbs.json", "POST", 200, 0.000_412_345, "9f3c2a7b1d4e5f60000000000000002a", "hit", None)


@contextlib.contextmanager
def destination(kind: str, folder: Path) -> Iterator[IO[str]]:
    """A text stream on a file, a pipe read by ``cat`` or ``/dev/null``."""
    if kind == "file":
        with open(folder / "access.log", "a", encoding="utf-8", buffering=1) as stream:
            yield stream
    elif kind == "devnull":
        with open("/dev/null", "w", encoding="utf-8", buffering=1) as stream:
            yield stream
    else:
        reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert reader.stdin is not None
        stream = io.TextIOWrapper(reader.stdin, encoding="utf-8", line_buffering=True)
        try:
            yield stream
        finally:
            stream.close()
            reader.wait(timeout=10)


async def one_round(access: AccessLog | None, lines: int, per_iteration: int) -> float:
    """CPU µs per line for ``lines`` lines, ``per_iteration`` per loop iteration
    (``access`` None: the loop alone, subtracted from both sides)."""
    cpu0 = time.process_time()
    done = 0
    while done < lines:
        for _ in range(per_iteration):
            if access is not None and access.enabled():
                access.write(*ARGS, foreign_id=False)
        done += per_iteration
        await asyncio.sleep(0)  # the iteration ends: the gateway's buffer is written
    await asyncio.sleep(0)
    return 1e6 * (time.process_time() - cpu0) / done


async def measure(side: str, args: argparse.Namespace, per_iteration: int, folder: Path) -> float:
    with destination(args.to, folder) as stream:
        logs.configure(args.format, "info", stream=stream)
        access = None
        if side != "loop":
            access = AccessLog(None if side == "logging" else logs.destination())
        best = float("inf")
        for _ in range(args.rounds):
            best = min(best, await one_round(access, args.lines, per_iteration))
        if access is not None:
            access.close()
        return best


def main() -> int:
    p = argparse.ArgumentParser(
        prog="loadtests/accesslog_bench.py", description=__doc__.split("\n")[0]
    )
    p.add_argument("--to", choices=("file", "pipe", "devnull"), default="file")
    p.add_argument("--format", choices=("json", "text"), default="json")
    p.add_argument("--lines", type=int, default=20_000, help="lines per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument(
        "--per-iteration",
        default="1,10,50",
        help="comma-separated: lines logged per loop iteration (requests finishing together)",
    )
    args = p.parse_args()
    import uvloop

    print(f"access line, {args.format}, to {args.to}; µs of CPU per line, best of {args.rounds}")
    with tempfile.TemporaryDirectory(prefix="accesslog-bench-") as tmp:
        for n in (int(x) for x in args.per_iteration.split(",")):
            loop = uvloop.run(measure("loop", args, n, Path(tmp)))
            old = uvloop.run(measure("logging", args, n, Path(tmp))) - loop
            new = uvloop.run(measure("gateway", args, n, Path(tmp))) - loop
            print(
                f"  {n:>3} per iteration: logging {old:6.2f} µs  gateway {new:6.2f} µs  "
                f"({old / new:4.1f}x)",
                flush=True,
            )
    logging.getLogger().handlers[:] = []
    return 0


if __name__ == "__main__":
    sys.exit(main())
