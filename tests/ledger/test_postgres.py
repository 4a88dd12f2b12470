"""The PostgreSQL ledger store against a real PostgreSQL: schema, idempotency, retention."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from gateway.config import Secret
from gateway.ledger.events import ROW_FIELDS, Event, Materializer
from gateway.ledger.migrations import migrations
from gateway.ledger.postgres import PostgresLedgerStore, partition_name
from tests.conftest import RTB_KEY, MakeGateway
from tests.ledger.helpers import wait_rows


def _stamped(materializer: Materializer, n: int, at: float | None = None) -> Any:
    at = at if at is not None else time.time()
    at = int(at * 1000) / 1000
    event = Event(
        at, f"req-{n}", "/rtbs.json", 200, "no_bid", publisher_id="p", caller="+18558485518"
    )
    return at, materializer.row(event)


def _store(url: str, retention_days: int = 90) -> PostgresLedgerStore:
    return PostgresLedgerStore(url, retention_days=retention_days, timeout_s=5.0)


async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    stores = [_store(postgres_url) for _ in range(4)]
    materializer = Materializer()
    await asyncio.gather(*(s.write([_stamped(materializer, i)]) for i, s in enumerate(stores)))
    conn = await asyncpg.connect(postgres_url)
    try:
        versions = await conn.fetch("SELECT version, name FROM ledger_schema_version")
        indexes = {
            r["indexname"]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'ledger_events'"
            )
        }
        count = await conn.fetchval("SELECT count(*) FROM ledger_events")
    finally:
        await conn.close()
        for store in stores:
            await store.close()
    assert [(r["version"], r["name"]) for r in versions] == [(v, n) for v, n, _ in migrations()]
    assert {
        "ledger_events_at",
        "ledger_events_publisher",
        "ledger_events_reservation",
        "ledger_events_caller",
    } <= indexes
    assert count == 4


async def test_a_batch_written_twice_is_stored_once(postgres_url: str) -> None:
    store = _store(postgres_url)
    materializer = Materializer()
    batch = [_stamped(materializer, n) for n in range(500)]
    try:
        await store.write(batch)
        await store.write(batch)
        await store.write([*batch[:10], _stamped(materializer, 500)])
        rows = [row async for row in store.export(None, None, 10_000)]
    finally:
        await store.close()
    assert len(rows) == 501
    assert len({r.request_id for r in rows}) == 501
    assert rows[0] == batch[0][1]  # every field comes back as written
    assert [r.at for r in rows] == sorted(r.at for r in rows)


async def test_old_partitions_are_dropped(postgres_url: str) -> None:
    materializer = Materializer()
    old = time.time() - 10 * 86400
    writer = _store(postgres_url, retention_days=30)
    try:
        await writer.write([_stamped(materializer, 1, old), _stamped(materializer, 2)])
    finally:
        await writer.close()
    old_day = datetime.fromtimestamp(old, UTC).date()
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", partition_name(old_day))
        # A replica started with a shorter retention drops the old day at its first write.
        short = _store(postgres_url, retention_days=5)
        try:
            await short.write([_stamped(materializer, 3)])
        finally:
            await short.close()
        assert not await conn.fetchval(
            "SELECT to_regclass($1) IS NOT NULL", partition_name(old_day)
        )
        ahead = datetime.now(UTC).date() + timedelta(days=2)
        assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", partition_name(ahead))
        assert await conn.fetchval("SELECT count(*) FROM ledger_events") == 2
    finally:
        await conn.close()


async def test_the_ledger_survives_a_gateway_restart(
    make_gateway: MakeGateway, sandbox_url: str, postgres_url: str, client: httpx.AsyncClient
) -> None:
    settings = dict(
        rtb_upstream_url=sandbox_url,
        ledger_url=Secret(postgres_url),
        ledger_secret=Secret("x" * 32),
    )
    ping = {"key": RTB_KEY, "publisher_id": "pub", "caller_number": "+18558485518"}
    async with make_gateway(**settings) as gw:
        answer = await client.post(f"{gw}/rtbs.json", json=ping)
        await client.post(f"{gw}/rtbs.json", json={"key": RTB_KEY})
    async with make_gateway(**settings) as gw:
        rows = await wait_rows(client, gw, 2)
    assert [r["outcome"] for r in rows] == ["reserved", "invalid"]
    assert tuple(rows[0]) == ROW_FIELDS
    assert rows[0]["reservation_uuid"] == answer.json()["uuid"]
    assert rows[0]["request_id"] == answer.headers["x-request-id"]


async def test_an_unreachable_ledger_exports_503_and_pings_go_on(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    from tests.support.ports import free_port

    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/ledger"
    async with make_gateway(
        rtb_upstream_url=sandbox_url,
        ledger_url=Secret(nowhere),
        ledger_timeout_ms=500,
        ledger_flush_timeout_s=1.0,
    ) as gw:
        ping = await client.post(
            f"{gw}/rtbs.json",
            json={"key": RTB_KEY, "publisher_id": "pub", "caller_number": "+18558485518"},
        )
        export = await client.get(f"{gw}/admin/ledger.ndjson")
    assert ping.status_code == 200
    assert export.status_code == 503
    assert export.json()["error"] == "ledger_unavailable"
