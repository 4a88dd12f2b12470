"""How fast does ``/admin/publishers.json`` answer over a month of a busy ledger?

Target (issue 23): analytics for 30 days × 200 publishers over 10 million events answer
in at most 1 s from PostgreSQL on a 2-core box.

How the data is made: analytics reads only ``ledger_rollups`` (one row per hour ×
publisher × sub-ID), never raw events, so the month is generated **as rollups, directly
in SQL** with ``generate_series`` (30 days × 24 h × 200 publishers × ``--sub-ids`` rows
whose ``pings`` add up to ``--events``): seconds instead of the hour that COPYing 10 M
events would take, and the same table the writer keeps. ``--through-writer N`` also
writes N real events through the PostgreSQL store (COPY + INSERT ... RETURNING + rollup
upsert, as the gateway's writer does) and prints events/s, the cost of keeping rollups.

Then a real gateway process (``python -m gateway serve`` with ``GATEWAY_LEDGER_URL``) is
asked each query ``--repeat`` times; the best and the worst wall time are printed next to
the target. Numbers mean something only on a quiet machine.

    uv run python loadtests/analytics_bench.py [--events 10000000] [--days 30]
        [--publishers 200] [--sub-ids 3] [--through-writer 0] [--repeat 5] [--url URL]

Without ``--url`` it starts a throwaway PostgreSQL as the tests do (Debian's postgresql).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.ledger.events import Event, Materializer  # noqa: E402
from gateway.ledger.outcomes import Reservation  # noqa: E402
from gateway.ledger.postgres import PostgresLedgerStore  # noqa: E402
from gateway.ledger.rollups import HIST_LEN  # noqa: E402

TARGET_S = 1.0

# Per rollup row, from its pings p: the other columns as integer shares of p (the same
# for every row, so the totals are easy to check by hand).
GENERATE = f"""
INSERT INTO ledger_rollups (hour, publisher_id, sub_id, pings, invalid, reserved, no_bid,
    repeat, errors, confirmed, payout_offered, upstream_ms_hist, calls, called_in_time,
    confirmed_not_called, converted, payout_earned)
SELECT hour, publisher_id, sub_id, p, p / 20, r, p * 5 / 10, p / 40,
    p - r - p * 5 / 10 - p / 20 - p / 40, r / 2, r * 5.0,
    ARRAY[0, 0, 0, r / 4, r / 4, r / 4, r - 3 * (r / 4)]
        || array_fill(0::bigint, ARRAY[{HIST_LEN - 7}]),
    r / 2 * 3 / 4, r / 2 * 3 / 4, r / 2 - r / 2 * 3 / 4, r / 2 * 3 / 4 / 2,
    (r / 2 * 3 / 4 / 2) * 5.0
FROM (
    SELECT $1::timestamptz + hi * interval '1 hour' AS hour,
        'pub-' || lpad(pub::text, 4, '0') AS publisher_id, 'sub-' || sub AS sub_id,
        -- Row number idx in 0..rows-1: the first `extra` rows carry one ping more.
        $4::bigint + CASE WHEN (hi * $3 + pub - 1) * $5 + sub - 1 < $6 THEN 1 ELSE 0 END AS p
    FROM generate_series(0, $2 - 1) AS hi, generate_series(1, $3) AS pub,
        generate_series(1, $5) AS sub
) AS g, LATERAL (SELECT g.p * 4 / 10 AS r) AS share
ON CONFLICT DO NOTHING
"""  # noqa: S608 - a constant


async def generate(url: str, events: int, days: int, publishers: int, subs: int) -> int:
    import asyncpg

    store = PostgresLedgerStore(url, retention_days=3650, timeout_s=600.0)
    try:  # one real event: connects, migrates (0001, 0002)
        await store.write(
            [(time.time(), Materializer().row(Event(time.time(), "w", "/x", 200, "x")))]
        )
    finally:
        await store.close()
    hours = days * 24
    rows = hours * publishers * subs
    base, extra = divmod(events, rows)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours - 1)
    conn = await asyncpg.connect(url, timeout=30)
    try:
        started = time.perf_counter()
        await conn.execute(GENERATE, start, hours, publishers, base, subs, extra, timeout=3600)
        await conn.execute("ANALYZE ledger_rollups", timeout=600)
        # The one event written to migrate counts as no ping (its route is not /rtbs.json).
        total = await conn.fetchval("SELECT sum(pings)::bigint FROM ledger_rollups", timeout=600)
        count = await conn.fetchval("SELECT count(*) FROM ledger_rollups", timeout=600)
        print(
            f"generated {count:,} rollup rows holding {total:,} pings "
            f"({days} days × {publishers} publishers × {subs} sub-IDs) "
            f"in {time.perf_counter() - started:.1f} s"
        )
    finally:
        await conn.close()
    return int(total)


async def through_writer(url: str, n: int) -> None:
    """N real events through the store's write (COPY, INSERT ... RETURNING, rollups)."""
    store = PostgresLedgerStore(url, retention_days=3650, timeout_s=600.0)
    materializer = Materializer(b"bench-secret-0123456789")
    reservation = Reservation(status="reserved", uuid="u", retreaver_payout=5.0)
    now = time.time()
    rows = []
    for i in range(n):
        event = Event(
            now + i / 1e6, f"bench-{i:024x}", "/rtbs.json", 200,
            "reserved" if i % 2 else "no_bid", f"pub-{i % 200:04d}", f"sub-{i % 3 + 1}",
            caller=f"+1855848{i % 10000:04d}",
            reservation=reservation if i % 2 else None, upstream_s=0.01 + (i % 50) / 1000,
        )  # fmt: skip
        rows.append((int(event.at * 1000) / 1000, materializer.row(event)))
    try:
        started = time.perf_counter()
        for i in range(0, n, 5000):  # the writer's batch size
            await store.write(rows[i : i + 5000])
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    print(f"through the writer: {n:,} events in {elapsed:.2f} s = {n / elapsed:,.0f} events/s")


# (what, parameters, hours back: None for every generated day)
QUERIES: tuple[tuple[str, dict[str, str], int | None], ...] = (
    ("all days, total, by publisher", {"granularity": "total", "by": "publisher"}, None),
    ("all days, total, by sub-ID", {"granularity": "total", "by": "sub_id"}, None),
    ("all days, per day, by publisher", {"granularity": "day", "by": "publisher"}, None),
    ("24 hours, per hour, by publisher", {"granularity": "hour", "by": "publisher"}, 24),
    ("24 hours, total, by sub-ID", {"granularity": "total", "by": "sub_id"}, 24),
)


def time_queries(gateway: str, repeat: int, days: int) -> None:
    now = datetime.now(UTC)
    with httpx.Client(base_url=gateway, timeout=120) as client:
        for name, params, hours in QUERIES:
            hours = days * 24 if hours is None else min(hours, days * 24)
            window = {
                "from": (now - timedelta(hours=hours)).isoformat(),
                "to": (now + timedelta(hours=1)).isoformat(),
            }
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                resp = client.get("/admin/publishers.json", params={**params, **window})
                times.append(time.perf_counter() - started)
                resp.raise_for_status()
            body = resp.json()
            verdict = "ok" if max(times) <= TARGET_S else "OVER TARGET"
            print(
                f"{name:34s} {len(body['rows']):6,} rows  best {min(times) * 1000:7.1f} ms  "
                f"worst {max(times) * 1000:7.1f} ms  (target ≤ {TARGET_S * 1000:.0f} ms: {verdict})"
                + ("  [truncated]" if body["truncated"] else "")
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--publishers", type=int, default=200)
    parser.add_argument("--sub-ids", type=int, default=3)
    parser.add_argument("--through-writer", type=int, default=0, metavar="N")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", help="a PostgreSQL URL (default: start one)")
    args = parser.parse_args()

    from tests.support.servers import GatewayProcess

    server = None
    url = args.url
    if url is None:
        from tests.support.postgres_server import PostgresServer

        server = PostgresServer()
        server.start()
        url = server.create_database("analytics_bench")
    gw = None
    try:
        asyncio.run(generate(url, args.events, args.days, args.publishers, args.sub_ids))
        if args.through_writer:
            asyncio.run(through_writer(url, args.through_writer))
        gw = GatewayProcess(
            {
                "GATEWAY_LEDGER_URL": url,
                "GATEWAY_RTB_UPSTREAM_URL": "http://127.0.0.1:9",
                "GATEWAY_LOG_LEVEL": "warning",
                "GATEWAY_ANALYTICS_MAX_ROWS": "100000",
            }
        )
        gw.wait_ready(timeout=60)
        time_queries(gw.url, args.repeat, args.days)
    finally:
        if gw is not None:
            gw.stop()
        if server is not None:
            server.close()


if __name__ == "__main__":
    main()
