"""Reconciliation's cost: N reservations against N calls, CPU of matching + settling.

The pass's three parts, measured apart:

- ``paging``: wall seconds to read the N calls from the sandbox's ``/api/v2/calls.json``
  (100 a page) through the gateway's Core API client, callers digested as they come.
  The sandbox serves from a thread of this process, so this is wall time, not CPU: it
  is the Core API's time, which a real pass waits for;
- ``match``: CPU seconds (``time.process_time``) of matching.match() over them;
- ``settle``: CPU seconds of writing the outcomes on the ledger's events (in process by
  default; ``--url`` settles in PostgreSQL, where the CPU shown is this process's only).

Target: match + settle at most 30 s of CPU for 100,000 against 100,000 on a 2-core box.

    uv run python loadtests/reconcile_bench.py [--n 100000] [--url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.coreapi.client import CoreApiClient  # noqa: E402
from gateway.ledger import memory_reconcile  # noqa: E402
from gateway.ledger.call_pages import read_calls  # noqa: E402
from gateway.ledger.events import Event, Materializer  # noqa: E402
from gateway.ledger.matching import match  # noqa: E402
from gateway.ledger.memory import MemoryLedgerStore  # noqa: E402
from gateway.ledger.outcomes import Reservation as Body  # noqa: E402
from gateway.ledger.reconcile import _reservation  # noqa: E402
from gateway.sandbox.callers import COMPANY_ID, _call  # noqa: E402


def _serve_sandbox() -> tuple[str, object]:
    import socket
    import threading

    import uvicorn

    from gateway.sandbox.asgi import create_sandbox_app

    app = create_sandbox_app(call_rate=0.0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", loop="asyncio")
    )
    threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True).start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}", app


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--url", help="settle in this PostgreSQL ledger instead of in process")
    args = parser.parse_args()
    n = args.n
    rng = random.Random(7)
    materializer = Materializer(b"bench-secret-bench-secret")
    start = datetime.now(UTC) - timedelta(hours=1)
    url, app = _serve_sandbox()
    company = app.state.core_api.data.by_company[COMPANY_ID]  # type: ignore[attr-defined]
    template = company.calls[0]
    store = MemoryLedgerStore(n + 10)
    rows = []
    for i in range(n):
        at = start + timedelta(milliseconds=20 * i)
        caller = f"+1855{i:07d}"
        inbound = f"+1877{i % 500:07d}"
        expires = at + timedelta(seconds=60)
        body = Body("reserved", f"res-{i}", 5.0, 10, inbound, expires.isoformat())
        event = Event(at.timestamp(), f"req-{i:08d}", "/rtbs.json", 200, "reserved", "pub-1")
        event.caller, event.reservation = caller, body
        rows.append((at.timestamp(), materializer.row(event)))
        company.calls.append(
            _call(
                template,
                rng,
                caller=caller,
                inbound=inbound,
                created=at + timedelta(seconds=rng.uniform(1, 50)),
                converted=i % 2 == 0,
                payout=5.0 if i % 2 == 0 else None,
            )
        )
    await store.write(rows)

    client = CoreApiClient(url, url, max_concurrency=4, timeout_s=60.0)
    await client.start()
    wall = time.perf_counter()
    read = await read_calls(
        client,
        api_key="barkbarkbark",
        company_id="1",
        start=start.timestamp(),
        end=time.time(),
        digest=materializer.caller_digest,
        max_pages=10_000,
    )
    paging_s = time.perf_counter() - wall
    await client.close()

    cpu = time.process_time()
    open_rows = memory_reconcile.open_reservations(store.rows, time.time(), n + 1)
    reservations = [r for r in map(_reservation, open_rows) if r is not None]
    outcomes = match(reservations, read.calls, now=datetime.now(UTC), grace=timedelta(seconds=120))
    match_cpu = time.process_time() - cpu

    cpu = time.process_time()
    if args.url:
        import asyncpg

        from gateway.ledger import postgres_reconcile
        from gateway.ledger.postgres import PostgresLedgerStore

        pg = PostgresLedgerStore(args.url, retention_days=90, timeout_s=120.0)
        await pg.write(rows)
        await pg.close()
        cpu = time.process_time()
        conn = await asyncpg.connect(args.url)
        settled = await postgres_reconcile.settle(conn, outcomes, 300.0)
        await conn.close()
    else:
        settled = memory_reconcile.settle(list(store.rows), outcomes)
    settle_cpu = time.process_time() - cpu

    called = sum(o.call_outcome == "called" for o in outcomes)
    where = "CPU, PostgreSQL" if args.url else "CPU"
    total = match_cpu + settle_cpu
    verdict = "ok" if total <= 30 else "OVER"
    print(f"reservations {n}, calls read {len(read.calls)} in {read.pages} pages")
    print(f"paging (Core API, wall)  {paging_s:8.2f} s")
    print(f"match (CPU)              {match_cpu:8.2f} s  outcomes {len(outcomes)}, called {called}")
    print(f"settle ({where})  {settle_cpu:8.2f} s  changed {settled.changed}")
    print(f"match + settle (CPU)     {total:8.2f} s  target <= 30 s: {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
