"""Instructions per ping, counted by callgrind: a measure the shared box cannot blur.

``loadtests/bench`` and ``loadtests/pathbench.py`` measure CPU time, the figure that
counts, but on a shared 2-core VM the same code measures 40% apart from one minute to
the next. Instructions retired do not depend on what else runs, so a change to the ping
path can be measured to the percent, and two trees (before and after a change) can be
measured at the same time, side by side.

It drives the gateway's ASGI app in process, as pathbench does (middleware, parsing,
shield, the ledger and its writer, forwarding to a real nginx, Redis on a real
redis-server), under ``valgrind --tool=callgrind`` with counting off; the run turns it on
(``callgrind_control``) once started and warmed, and off once the pings are answered and
the ledger's queue is written, so start-up, warm-up and imports are never counted. A
``hit`` is a repeat answered from the near-cache (100 callers warmed first); a ``forward``
a new caller forwarded to nginx. Under valgrind the app runs ~50x slower, so its deadlines
are raised and the near-cache keeps its copies for the whole run: with its TTL, how many
copies lapse (and cost a Redis round trip) would depend on how fast valgrind runs.

    uv run python loadtests/instructions.py [--trees DIR,DIR] [--paths hit,forward]
                                            [--logs on|off] [--pings 500]
                                            [--hit-lane on|off|both]

``--trees`` takes other checkouts of the project (each with its own ``.venv``, made by
``uv sync``), so a before and an after are counted in the same run. Needs valgrind.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def child(path: str, pings: int, offset: int, logs: str) -> None:
    """Inside valgrind, in the tree under test: serve ``pings`` pings in process."""
    sys.path.insert(0, str(HERE))
    import msgspec
    import pathbench
    import uvloop

    from gateway.app import create_app
    from gateway.config import Settings

    if logs == "on":  # the access log as `gateway serve` writes it, to a file
        try:
            from gateway.observe import logs as gateway_logs
        except ImportError:  # a tree from before the package-by-feature layout
            from gateway import logs as gateway_logs  # type: ignore[no-redef]
        log_file = open(os.environ["IR_LOG"], "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        gateway_logs.configure("json", "info", stream=log_file)

    env = {
        "GATEWAY_RTB_UPSTREAM_URL": os.environ["IR_UPSTREAM"],
        "GATEWAY_REDIS_URL": os.environ["IR_REDIS"],
        "GATEWAY_LOG_LEVEL": "info" if logs == "on" else "warning",
        "GATEWAY_RTB_TIMEOUT_MS": "20000",
    }
    fields = set(getattr(Settings, "__struct_fields__", ()))
    if "hit_lane" in fields:
        env["GATEWAY_HIT_LANE"] = os.environ.get("IR_HIT_LANE", "on")
    if "redis_timeout_ms" in fields:
        env["GATEWAY_REDIS_TIMEOUT_MS"] = "5000"
    settings = Settings.from_env(env)
    if "shield_near_cache_ttl_ms" in fields:
        # Past the setting's bound on purpose (replace does not validate): a copy re-read
        # from Redis once its TTL lapses would count Redis round trips as a hit's work,
        # and how many lapse would depend on how fast valgrind happens to run.
        settings = msgspec.structs.replace(settings, shield_near_cache_ttl_ms=10**9)
    app = create_app(settings)
    # Built before start-up, as a server's first request (the lifespan) builds it: the
    # hit lane is made from the middleware instances in it.
    app.middleware_stack = app.build_middleware_stack()

    async def run() -> None:
        async with app.router.lifespan_context(app) as state:
            state = dict(state or {})
            if path == "hit":
                warm = [pathbench.ping_body(7_000_000 + i) for i in range(100)]
                await pathbench.run_path(app, state, warm, 10)
                bodies = [pathbench.ping_body(7_000_000 + i % 100) for i in range(pings)]
            else:
                bodies = [pathbench.ping_body(8_000_000 + offset + i) for i in range(pings)]
            # The ledger's writer works after the pings: its queue is waited out inside
            # the count, so the count is everything the pings cost.
            ledgers = [o for o in gc.get_objects() if type(o).__name__ == "Ledger"]
            await drained(ledgers)
            # Every run starts the count with the collector's generations empty: otherwise
            # a full collection lands in the window in one run and not the next (±20%).
            gc.collect()
            instrument("on")
            await pathbench.run_path(app, state, bodies, 10)
            await drained(ledgers)
            instrument("off")

    uvloop.run(run())


def instrument(state: str) -> None:
    """Turn callgrind's counting on or off for this process (it starts off)."""
    subprocess.run(
        ["callgrind_control", "--instr=" + state, str(os.getpid())],
        check=True,
        capture_output=True,
    )


async def drained(ledgers: list[Any]) -> None:
    for ledger in ledgers:
        await ledger.flush(120.0)


def count(tree: Path, path: str, pings: int, offset: int, logs: str, env: dict[str, str]) -> int:
    """Instructions callgrind counted for one run of ``pings`` in ``tree``."""
    python = tree / ".venv" / "bin" / "python"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        "--instr-atstart=no",
        str(python),
        str(Path(__file__).resolve()),
        "--child",
        path,
        str(pings),
        str(offset),
        logs,
    ]
    done = subprocess.run(
        cmd, cwd=tree, env={**env, "PYTHONPATH": str(tree)}, capture_output=True, text=True
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{tree} {path}: callgrind failed:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def per_ping(tree: Path, path: str, pings: int, logs: str, env: dict[str, str], lane: str) -> float:
    return count(tree, path, pings, 0, logs, {**env, "IR_HIT_LANE": lane}) / pings


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        path, pings, offset, logs = sys.argv[2:6]
        child(path, int(pings), int(offset), logs)
        return 0
    p = argparse.ArgumentParser(
        prog="loadtests/instructions.py", description=__doc__.split("\n")[0]
    )
    p.add_argument("--trees", default=str(ROOT), help="checkouts to count, comma-separated")
    p.add_argument("--paths", default="hit,forward")
    p.add_argument("--logs", choices=("on", "off"), default="off")
    p.add_argument("--pings", type=int, default=500, help="pings counted per tree")
    p.add_argument(
        "--hit-lane",
        choices=("on", "off", "both"),
        default="on",
        help="hits answered by the app's hit lane, as the server does (trees that have one)",
    )
    args = p.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is needed: apt-get install valgrind", file=sys.stderr)
        return 2
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    sys.path.insert(0, str(HERE))
    import harness
    import nginx

    out = Path(tempfile.mkdtemp(prefix="instructions-"))
    with harness.Processes(out) as procs:
        _, port = nginx.start_upstream(procs)
        _, redis_url = harness.start_redis(procs)
        env = {
            **harness.clean_env(),
            "IR_UPSTREAM": f"http://{harness.HOST}:{port}",
            "IR_REDIS": redis_url,
            "IR_LOG": str(out / "access.log"),
        }
        lanes = ("on", "off") if args.hit_lane == "both" else (args.hit_lane,)
        jobs = [
            (tree, path, lane) for path in args.paths.split(",") for tree in trees for lane in lanes
        ]
        # Counts do not depend on contention: every job runs at once, one per core.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            results = pool.map(
                lambda job: per_ping(job[0], job[1], args.pings, args.logs, env, job[2]), jobs
            )
            for (tree, path, lane), ir in zip(jobs, results, strict=True):
                print(
                    f"{path:<8} logs {args.logs:<3} lane {lane:<3} {ir:>10,.0f} "
                    f"instructions/ping  {tree}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
