"""µs of gateway CPU per ping, in process: for picking hot-path levers on a busy machine.

``loadtests/bench`` measures the whole server (uvicorn included) under wrk, which is the
figure that counts, but on a shared 2-core box its µs/request swing by 2x between runs.
This drives the gateway's ASGI app directly (middleware, fast lane, parsing, shield,
forwarding through aiohttp to a real nginx, Redis on a real redis-server), ``--concurrency``
pings in flight, and charges this process's CPU time (``time.process_time``: waiting for
the other core does not count) to the pings served; the best of ``--rounds`` is kept, since
contention only ever adds. It leaves out uvicorn's HTTP parsing and writing (a fixed
~30-40 µs per request on the reference box), so compare its figures with each other.

With ``--logs on`` (the default, as users run it) the app logs at ``info`` and writes
its access line per ping to a file in the output folder, as ``gateway serve`` would to its
log destination; ``--logs off`` is the ``warning`` level (no access lines); ``--logs both``
prints each path both ways, so the difference is the access log's cost per ping.

    uv run python loadtests/pathbench.py [--paths hit-redis,forward-redis,forward-memory]
                                         [--logs on|off|both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import nginx

from gateway.app import create_app
from gateway.config import Settings

KEY = "7fc40342-f0a0-4e8f-bf09-b3887eedcb4a"
CODES = ("212", "213", "305", "312", "404", "415", "512", "617", "702", "713", "720", "818")


def ping_body(n: int) -> bytes:
    area = CODES[n % len(CODES)]
    rest = n // len(CODES)
    caller = f"+1{area}{200 + (rest // 10000) % 800:03d}{rest % 10000:04d}"
    return (
        f'{{"key":"{KEY}","publisher_id":"pub_{1000 + n % 24}","caller_number":"{caller}",'
        f'"caller_zip":"{10000 + n % 89999:05d}","caller_state":"CA","utm_source":"google",'
        f'"utm_campaign":"medicare_q4_2026","age":{21 + n % 60},"tcpa_consent":true}}'
    ).encode()


async def one(app: Any, state: dict[str, Any], body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/rtbs.json",
        "raw_path": b"/rtbs.json",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": dict(state),
    }
    # As the server's protocol does: a shield hit the app's hit lane (gateway/ping/
    # hit_lane.py) can answer at once never takes the ASGI way. Trees without one, or
    # with GATEWAY_HIT_LANE=off, have none.
    lane = getattr(app.state, "hit_lane", None)
    if lane is not None and lane.wants(scope):
        answered = lane(scope, body)
        if answered is not None:
            return int(answered[0]["status"])
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run_path(app: Any, state: dict[str, Any], bodies: list[bytes], conc: int) -> float:
    """CPU µs per ping for ``bodies`` with ``conc`` in flight."""
    queue = iter(bodies)
    statuses: dict[int, int] = {}

    async def worker() -> None:
        for body in queue:
            status = await one(app, state, body)
            statuses[status] = statuses.get(status, 0) + 1

    cpu0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(conc)))
    cpu = time.process_time() - cpu0
    if set(statuses) != {200}:
        raise RuntimeError(f"non-200 answers: {statuses}")
    return 1e6 * cpu / len(bodies)


async def measure(
    path: str, upstream: str, redis_url: str, args: argparse.Namespace, log_level: str
) -> float:
    env = {"GATEWAY_RTB_UPSTREAM_URL": upstream, "GATEWAY_LOG_LEVEL": log_level}
    if path.endswith("redis"):
        env["GATEWAY_REDIS_URL"] = redis_url
    settings = Settings.from_env(env)
    app = create_app(settings)
    # Built before start-up, as a server's first request (the lifespan) builds it: the
    # hit lane is made from the middleware instances in it.
    app.middleware_stack = app.build_middleware_stack()
    best = float("inf")
    async with app.router.lifespan_context(app) as state:
        state = dict(state or {})
        base = 3_000_000 * (1 + hash(path) % 50) + int(time.time()) % 1_000_000 * 10
        if path.startswith("hit"):
            warm = [ping_body(base + i) for i in range(100)]
            await run_path(app, state, warm, 10)
        for r in range(args.rounds):
            if path.startswith("hit"):
                bodies = [ping_body(base + i % 100) for i in range(args.pings)]
            else:
                start = base + 1_000 + r * args.pings
                bodies = [ping_body(start + i) for i in range(args.pings)]
            best = min(best, await run_path(app, state, bodies, args.concurrency))
    return best


def main() -> int:
    p = argparse.ArgumentParser(prog="loadtests/pathbench.py", description=__doc__.split("\n")[0])
    p.add_argument("--paths", default="hit-redis,forward-redis,forward-memory")
    p.add_argument("--pings", type=int, default=3000, help="pings per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--cpu", type=int, default=0, help="pin this process to a core")
    p.add_argument("--load-cpu", type=int, default=1, help="nginx and redis-server here")
    p.add_argument(
        "--logs",
        choices=("on", "off", "both"),
        default="on",
        help="the access log (on: info level, one JSON line per ping into a file)",
    )
    args = p.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    import uvloop

    out = Path(__file__).resolve().parent / "out" / f"pathbench-{time.strftime('%H%M%S')}"
    with harness.Processes(out) as procs:
        _, port = nginx.start_upstream(procs, cpus=[args.load_cpu])
        _, redis_url = harness.start_redis(procs, cpus=[args.load_cpu])
        out.mkdir(parents=True, exist_ok=True)
        from gateway.observe import logs as gateway_logs  # here: instructions.py imports
        # this module's drive into checkouts from before the package-by-feature layout

        levels = {"on": ["info"], "off": ["warning"], "both": ["info", "warning"]}[args.logs]
        with open(out / "gateway.log", "a", encoding="utf-8", buffering=1) as log_file:
            for path in args.paths.split(","):
                for level in levels:
                    gateway_logs.configure("json", level, stream=log_file)
                    upstream = f"http://{harness.HOST}:{port}"
                    us = uvloop.run(measure(path, upstream, redis_url, args, level))
                    word = "logs on " if level == "info" else "logs off"
                    print(
                        f"{path:<16} {word} {us:7.1f} µs CPU/ping (best of {args.rounds})",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
