"""Reconciliation under faults, against a real PostgreSQL ledger and the sandbox.

The Core API down or throttling during a pass: the pass fails, settles nothing and
leaves the watermark, and the next pass settles everything once (no call lost, none
matched twice). Two gateways sharing the ledger: exactly one runs a pass at a time.
A gateway stopped mid-pass: the next one resumes from the persisted watermark.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import httpx

from gateway.config import Secret
from gateway.ledger.call_pages import PATH
from tests.conftest import MakeGateway
from tests.ledger.helpers import wait_rows
from tests.ledger.reconcile_helpers import configure, gateway_settings, ping, reconcile_until

SECRET = Secret("reconcile-test-ledger-secret")


def _settings(sandbox_url: str, postgres_url: str, **more: Any) -> dict[str, Any]:
    return gateway_settings(
        sandbox_url, ledger_url=Secret(postgres_url), ledger_secret=SECRET, **more
    )


async def _outcomes(postgres_url: str) -> list[tuple[str | None, str | None]]:
    conn = await asyncpg.connect(postgres_url)
    try:
        rows = await conn.fetch(
            "SELECT call_outcome, call_uuid FROM ledger_events "
            "WHERE outcome = 'reserved' ORDER BY request_id"
        )
    finally:
        await conn.close()
    return [(r["call_outcome"], r["call_uuid"]) for r in rows]


async def _calls_pings(client: httpx.AsyncClient, gw: str, sandbox_url: str, n: int) -> None:
    await configure(client, sandbox_url, call_rate=1.0, convert_rate=1.0, call_after_ms=300)
    for i in range(n):
        await ping(client, gw, f"+1855848570{i}")
    await wait_rows(client, gw, n)


async def test_core_api_down_or_throttling_then_back_loses_nothing(
    make_gateway: MakeGateway,
    sandbox_url: str,
    postgres_url: str,
    client: httpx.AsyncClient,
) -> None:
    # No waiting out 429s: a storm fails the pass at once, the next interval retries.
    settings = _settings(
        sandbox_url, postgres_url, core_api_max_retry_wait_s=0.0, core_api_max_quiet_s=0.05
    )
    async with make_gateway(**settings) as gw:
        await _calls_pings(client, gw, sandbox_url, 3)
        for fault in (
            {"core_api_status": 503},
            {"core_api_429": 1000, "core_api_retry_after_s": 5},
        ):
            await configure(client, sandbox_url, **fault)
            failed = (await client.post(f"{gw}/admin/reconcile")).json()
            assert failed["errors"] == 1
            assert failed["settled"] == 0
            assert failed["error"].startswith("core api")
            assert await _outcomes(postgres_url) == [(None, None)] * 3
        await configure(client, sandbox_url)
        summaries = await reconcile_until(client, gw, settled=3)
        again = (await client.post(f"{gw}/admin/reconcile")).json()
        metrics = (await client.get(f"{gw}/metrics")).text
    outcomes = await _outcomes(postgres_url)
    assert [o for o, _ in outcomes] == ["called"] * 3
    assert len({u for _, u in outcomes}) == 3
    assert sum(s["matched"] for s in summaries) == 3, summaries
    assert again["settled"] == 0
    # The two failed passes, and any that met the credentials' quiet right after the storm.
    failures = 2 + sum(s["errors"] for s in summaries)
    assert f'gateway_reconcile_passes_total{{result="error"}} {failures}.0' in metrics


async def test_two_replicas_exactly_one_reconciles(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    postgres_url: str,
    client: httpx.AsyncClient,
) -> None:
    sandbox_url, app = sandbox
    core = app.state.core_api
    settings = _settings(sandbox_url, postgres_url)
    async with make_gateway(**settings) as a, make_gateway(**settings) as b:
        await _calls_pings(client, a, sandbox_url, 2)
        core.hold()  # a's pass stays in flight, holding the lock
        first = asyncio.create_task(client.post(f"{a}/admin/reconcile"))
        await core.wait_in_flight(1)
        second = (await client.post(f"{b}/admin/reconcile")).json()
        core.release()
        done = (await first).json()
        assert second["ran"] is False
        assert done["ran"] is True
        # Once a's pass is over, b may run one.
        assert (await client.post(f"{b}/admin/reconcile")).json()["ran"] is True
    calls_reads = [r for r in core.received if r["path"] == PATH]
    assert len(calls_reads) == 2  # a's pass, then b's; never both at once


async def test_a_restart_mid_pass_resumes_from_the_watermark(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    postgres_url: str,
    client: httpx.AsyncClient,
) -> None:
    sandbox_url, app = sandbox
    core = app.state.core_api
    settings = _settings(sandbox_url, postgres_url, reconcile_overlap_s=30.0)
    async with make_gateway(**settings) as a:
        await _calls_pings(client, a, sandbox_url, 2)
        await reconcile_until(client, a, settled=2)
    conn = await asyncpg.connect(postgres_url)
    try:
        mark = await conn.fetchval("SELECT watermark FROM ledger_reconcile_state")
    finally:
        await conn.close()
    async with make_gateway(**settings) as b:
        await _calls_pings(client, b, sandbox_url, 2)
        core.received.clear()
        core.hold()
        cut = asyncio.create_task(client.post(f"{b}/admin/reconcile"))
        await core.wait_in_flight(1)
    # b stopped while its pass waited on the Core API: nothing settled, watermark kept.
    core.release()
    cut.cancel()
    await asyncio.gather(cut, return_exceptions=True)
    assert [o for o, _ in await _outcomes(postgres_url)].count(None) == 2
    async with make_gateway(**settings) as c:
        core.received.clear()
        await reconcile_until(client, c, settled=2)
    first_read = next(r for r in core.received if r["path"] == PATH)
    start = parse_qs(first_read["query"])["created_at_start"][0]
    # The query carries milliseconds; the stored watermark microseconds.
    assert abs(datetime.fromisoformat(start) - (mark - timedelta(seconds=30))) < timedelta(
        milliseconds=1
    )
    outcomes = await _outcomes(postgres_url)
    assert [o for o, _ in outcomes] == ["called"] * 4
    assert len({u for _, u in outcomes}) == 4
