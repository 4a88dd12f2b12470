"""The ledger's figures: record() µs per ping, and the events/s the PostgreSQL writer sustains.

Three numbers, all CPU of this process (``time.process_time``, so waiting for the other
core does not count; the best of ``--rounds`` is kept, since contention only adds):

- ``record``: µs per ping on the ping path: building the :class:`Event` as the tap does
  and appending it to the bounded queue (target: at most 3 µs);
- ``outcome``: µs to read a reservation's status and fields from its body (the one parse
  the tap makes, shared by X-Outcome and the event);
- the PostgreSQL writer: events/s from queue to committed rows (COPY + INSERT ... ON
  CONFLICT), and the writer's CPU µs per event (materializing, encoding). Target: at
  least 20,000 events/s on a 2-core box. PostgreSQL runs beside it on the same box.

    uv run python loadtests/ledger_bench.py [--events 200000] [--url postgresql://...]

Without ``--url`` it starts a throwaway PostgreSQL as the tests do (Debian's postgresql).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.ledger.events import Event, Materializer  # noqa: E402
from gateway.ledger.memory import MemoryLedgerStore  # noqa: E402
from gateway.ledger.outcomes import parse_reservation  # noqa: E402
from gateway.ledger.writer import Ledger  # noqa: E402

BODY = (
    b'{"uuid":"c6e4ce37-9b49-46af-bd8e-16cb7753499d","status":"reserved",'
    b'"retreaver_payout":5.0,"retreaver_seconds":10,"inbound_number":"+18772435010",'
    b'"expires_at":"2026-12-04T12:08:49.880Z"}'
)
KEY = "7fc40342-f0a0-4e8f-bf09-b3887eedcb4a"


def bench_record(n: int, rounds: int) -> float:
    reservation = parse_reservation(BODY)
    tags = {"sub_id": "s-1", "age": "40"}
    best = float("inf")
    for _ in range(rounds):
        ledger = Ledger(MemoryLedgerStore(10), Materializer(), queue_max=n + 1)
        record = ledger.record
        started = time.perf_counter()
        cpu = time.process_time()
        for _ in range(n):
            record(
                Event(
                    time.time(),
                    "0123456789abcdef0123456789abcdef",
                    "/rtbs.json",
                    200,
                    "reserved",
                    "pub-1",
                    tags.get("sub_id"),
                    KEY,
                    "+18558485518",
                    reservation,
                    None,
                    time.perf_counter() - started,
                    0.0012,
                )
            )
        best = min(best, (time.process_time() - cpu) / n * 1e6)
        assert ledger.depth == n
    return best


def bench_outcome(n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        cpu = time.process_time()
        for _ in range(n):
            parse_reservation(BODY)
        best = min(best, (time.process_time() - cpu) / n * 1e6)
    return best


async def bench_postgres(url: str, events: int) -> tuple[float, float]:
    from gateway.ledger.postgres import PostgresLedgerStore

    store = PostgresLedgerStore(url, retention_days=90, timeout_s=30.0)
    ledger = Ledger(store, Materializer(b"bench-secret-0123456789"), queue_max=events + 1)
    reservation = parse_reservation(BODY)
    await ledger.start()
    try:
        # Warm up: connect, migrate, create partitions.
        ledger.record(Event(time.time(), "warm", "/rtbs.json", 200, "no_bid"))
        await ledger.flush(60)
        now = time.time()
        for i in range(events):
            ledger.record(
                Event(
                    now + i / 1e6,
                    f"{i:032x}",
                    "/rtbs.json",
                    200,
                    "reserved",
                    f"pub-{i % 200}",
                    f"s-{i % 17}",
                    KEY,
                    f"+1855848{i % 10000:04d}",
                    reservation,
                    None,
                    0.002,
                    0.0012,
                )
            )
        wall = time.perf_counter()
        cpu = time.process_time()
        if not await ledger.flush(600):
            raise RuntimeError("the writer did not finish")
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
    finally:
        await ledger.close()
    return events / wall, cpu / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--record-calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--url", help="a PostgreSQL URL (default: start one)")
    args = parser.parse_args()

    print(f"record():        {bench_record(args.record_calls, args.rounds):6.2f} µs CPU per ping")
    print(
        f"outcome parse:   {bench_outcome(args.record_calls, args.rounds):6.2f} µs CPU per answer"
    )

    server = None
    url = args.url
    if url is None:
        from tests.support.postgres_server import PostgresServer

        server = PostgresServer()
        server.start()
        url = server.create_database("ledger_bench")
    try:
        rate, cpu_us = asyncio.run(bench_postgres(url, args.events))
    finally:
        if server is not None:
            server.close()
    print(f"PostgreSQL writer: {rate:,.0f} events/s, {cpu_us:.1f} µs writer CPU per event")


if __name__ == "__main__":
    main()
