"""The ledger under PostgreSQL faults: down, killed mid-batch, slow; and a full queue.

In every case pings are answered as before (the ledger does no I/O on their path), what
fits in the queue is written once PostgreSQL is back, with no duplicate, and what did
not fit is counted. Waits are on what can be observed (the writer's counters on /stats,
rows in the database), never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from gateway.config import Secret
from gateway.ledger.events import Event, Materializer
from gateway.ledger.postgres import PostgresLedgerStore
from gateway.ledger.writer import Ledger
from tests.conftest import RTB_KEY, MakeGateway
from tests.faults.conftest import Record
from tests.support.tcp_proxy import TcpProxy

PING = {"key": RTB_KEY, "publisher_id": "pub", "caller_number": "+18558485518"}


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    """Poll ``check`` (a read of state, not a guess of time) until it holds."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def db_count(url: str, distinct: bool = False) -> int:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        if await conn.fetchval("SELECT to_regclass('ledger_events') IS NULL"):
            return 0
        what = "count(DISTINCT (request_id, leg))" if distinct else "count(*)"
        return int(await conn.fetchval(f"SELECT {what} FROM ledger_events"))  # noqa: S608
    finally:
        await conn.close()


async def rollup_pings(url: str) -> int:
    """Pings counted by the analytics rollups (kept in the writer's transaction)."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return int(await conn.fetchval("SELECT coalesce(sum(pings), 0) FROM ledger_rollups"))
    finally:
        await conn.close()


async def ledger_stats(client: httpx.AsyncClient, gw: str) -> dict[str, Any]:
    return (await client.get(f"{gw}/stats")).json()["ledger"]


class Load:
    """Pings in a loop from ``workers`` concurrent clients; counts every answer."""

    def __init__(self, client: httpx.AsyncClient, gw: str, workers: int = 8) -> None:
        self.client, self.gw, self.workers = client, gw, workers
        self.answered = 0
        self.failed: list[int] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _loop(self, worker: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            caller = f"+1855848{worker:02d}{n % 100:02d}"
            resp = await self.client.post(
                f"{self.gw}/rtbs.json", json={**PING, "caller_number": caller}
            )
            self.answered += 1
            if resp.status_code != 200:
                self.failed.append(resp.status_code)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(w)) for w in range(self.workers)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def answered_more(self, count: int) -> None:
        target = self.answered + count
        await until(lambda: _true(self.answered >= target))


async def _true(value: bool) -> bool:
    return value


async def test_postgres_stopped_under_load(
    make_gateway: MakeGateway,
    sandbox_url: str,
    postgres: Any,
    postgres_url: str,
    client: httpx.AsyncClient,
    figure: Record,
) -> None:
    async with make_gateway(
        rtb_upstream_url=sandbox_url, ledger_url=Secret(postgres_url), ledger_timeout_ms=1000
    ) as gw:
        load = Load(client, gw)
        load.start()
        await until(lambda: _rows_at_least(postgres_url, 50))
        postgres.stop()
        stopped_at = time.monotonic()
        await until(lambda: _failures(client, gw))
        await load.answered_more(500)  # pings go on while PostgreSQL is down
        during = await ledger_stats(client, gw)
        postgres.start()
        outage_s = time.monotonic() - stopped_at
        await load.answered_more(200)
        await load.stop()
        await until(lambda: _rows_at_least(postgres_url, load.answered), timeout_s=60)
        after = await ledger_stats(client, gw)
    figure("pings answered", load.answered)
    figure("outage (s)", outage_s)
    figure("queue depth during outage", during["queue_depth"])
    assert load.failed == []
    assert during["queue_depth"] > 0
    assert after["dropped_total"] == 0
    assert await db_count(postgres_url) == load.answered
    assert await db_count(postgres_url, distinct=True) == load.answered
    assert await rollup_pings(postgres_url) == load.answered  # retried batches counted once


async def _rows_at_least(url: str, count: int) -> bool:
    return await db_count(url) >= count


async def _failures(client: httpx.AsyncClient, gw: str) -> bool:
    return (await ledger_stats(client, gw))["write_failures_total"] > 0


def _events(start: int, count: int) -> list[Event]:
    now = time.time()
    return [
        Event(now, f"req-{n}", "/rtbs.json", 200, "no_bid", publisher_id="p")
        for n in range(start, start + count)
    ]


async def test_postgres_killed_mid_batch_leaves_no_duplicate_and_no_gap(
    postgres: Any, postgres_url: str, figure: Record
) -> None:
    async with TcpProxy(postgres.port) as proxy:
        via_proxy = postgres_url.replace(f":{postgres.port}/", f":{proxy.port}/")
        store = PostgresLedgerStore(via_proxy, retention_days=90, timeout_s=1.0)
        ledger = Ledger(store, Materializer(), queue_max=100_000)
        await ledger.start()
        try:
            for event in _events(0, 10):
                ledger.record(event)
            assert await ledger.flush(30)
            # The next batch is sent while PostgreSQL's answers are held: the writer is
            # mid-batch (its transaction open) when PostgreSQL crashes.
            proxy.hold_replies()
            for event in _events(10, 1000):
                ledger.record(event)
            await until(lambda: _true(ledger.writing == 1000))
            postgres.kill()
            postgres.start()
            proxy.release_replies()
            for event in _events(1010, 500):
                ledger.record(event)
            assert await ledger.flush(60)
        finally:
            await ledger.close()
    figure("write failures retried", ledger.failures)
    assert ledger.failures >= 1
    assert await db_count(postgres_url) == 1510
    assert await db_count(postgres_url, distinct=True) == 1510
    assert await rollup_pings(postgres_url) == 1510  # the killed batch counted once


async def test_a_slow_postgres_never_slows_a_ping(
    make_gateway: MakeGateway,
    sandbox_url: str,
    postgres: Any,
    postgres_url: str,
    client: httpx.AsyncClient,
) -> None:
    async with TcpProxy(postgres.port) as proxy:
        via_proxy = postgres_url.replace(f":{postgres.port}/", f":{proxy.port}/")
        async with make_gateway(
            rtb_upstream_url=sandbox_url, ledger_url=Secret(via_proxy), ledger_timeout_ms=30_000
        ) as gw:
            await client.post(f"{gw}/rtbs.json", json=PING)
            await until(lambda: _rows_at_least(postgres_url, 1))
            proxy.hold_replies()  # every PostgreSQL answer now waits: the writer is stuck
            await client.post(f"{gw}/rtbs.json", json={**PING, "caller_number": "+18558485519"})
            await until(lambda: _in_hand(client, gw))
            stuck = await ledger_stats(client, gw)
            answers = [
                await client.post(
                    f"{gw}/rtbs.json", json={**PING, "caller_number": f"+1855848553{n}"}
                )
                for n in range(10)
            ]
            # All answered while the writer was still waiting on PostgreSQL.
            still = await ledger_stats(client, gw)
            proxy.release_replies()
            await until(lambda: _rows_at_least(postgres_url, 12))
    assert [a.status_code for a in answers] == [200] * 10
    assert still["written_total"] == stuck["written_total"]
    assert still["queue_depth"] >= 11
    assert await db_count(postgres_url) == 12


async def _in_hand(client: httpx.AsyncClient, gw: str) -> bool:
    return (await ledger_stats(client, gw))["queue_depth"] >= 1


async def test_a_full_queue_drops_and_counts_never_fails_a_ping(
    make_gateway: MakeGateway,
    sandbox_url: str,
    postgres: Any,
    postgres_url: str,
    client: httpx.AsyncClient,
) -> None:
    postgres.stop()
    try:
        async with make_gateway(
            rtb_upstream_url=sandbox_url,
            ledger_url=Secret(postgres_url),
            ledger_queue_max=50,
            ledger_timeout_ms=500,
            ledger_flush_timeout_s=30.0,
        ) as gw:
            answers = [
                await client.post(
                    f"{gw}/rtbs.json", json={**PING, "caller_number": f"+1855848{n:04d}"}
                )
                for n in range(200)
            ]
            full = await ledger_stats(client, gw)
            metrics = (await client.get(f"{gw}/metrics")).text
            postgres.start()
            await until(lambda: _rows_at_least(postgres_url, 50))
    finally:
        if postgres.proc is None or postgres.proc.poll() is not None:
            postgres.start()
    assert [a.status_code for a in answers] == [200] * 200
    assert full["queue_depth"] == 50
    assert full["dropped_total"] == 150
    assert "gateway_ledger_events_dropped_total 150.0" in metrics
    assert await db_count(postgres_url) == 50


def test_a_million_events_offered_to_a_stopped_writer_stay_within_the_bound(
    figure: Record,
) -> None:
    from gateway.ledger.memory import MemoryLedgerStore

    ledger = Ledger(MemoryLedgerStore(10), Materializer(), queue_max=100_000)
    event = _events(0, 1)[0]
    for _ in range(1_000_000):
        ledger.record(event)
    assert ledger.depth == 100_000
    assert ledger.dropped == 900_000
    figure("events held", ledger.depth)


async def test_sigterm_flushes_the_queue_before_exiting(
    sandbox_url: str, postgres: Any, postgres_url: str, client: httpx.AsyncClient, figure: Record
) -> None:
    """The writer is stuck (PostgreSQL's answers held) when SIGTERM comes, and is let go
    only once the gateway has stopped listening: the events are written only because
    shutdown waits for the flush."""
    from tests.faults.procs import gateway

    async with TcpProxy(postgres.port) as proxy:
        via_proxy = postgres_url.replace(f":{postgres.port}/", f":{proxy.port}/")
        proc = gateway(
            {
                "GATEWAY_RTB_UPSTREAM_URL": sandbox_url,
                "GATEWAY_LEDGER_URL": via_proxy,
                "GATEWAY_LEDGER_TIMEOUT_MS": "60000",
                "GATEWAY_DRAIN_DELAY_S": "0",
            }
        )
        try:
            await proc.wait_ready()
            await client.post(f"{proc.url}/rtbs.json", json=PING)
            await until(lambda: _rows_at_least(postgres_url, 1))
            proxy.hold_replies()
            answers = await asyncio.gather(
                *(
                    client.post(
                        f"{proc.url}/rtbs.json", json={**PING, "caller_number": f"+1855848{n:04d}"}
                    )
                    for n in range(300)
                )
            )
            proc.signal(15)
            await until(lambda: _true(not _listening(proc.port)))
            held = await db_count(postgres_url)
            proxy.release_replies()
            code = await proc.wait()
        finally:
            proc.stop()
    figure("rows while the writer was held", held)
    assert code == 0, proc.tail()
    assert [a.status_code for a in answers] == [200] * 300
    assert held == 1
    assert await db_count(postgres_url) == 301


def _listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
