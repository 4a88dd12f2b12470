"""Reconciliation end to end: pings through a gateway in front of the sandbox, whose
callers call, a pass, and exact outcomes and payouts in the admin export."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.ledger.reconcile import SANDBOX_API_KEY
from gateway.sandbox.api.data import API_KEYS
from tests.conftest import RTB_KEY, MakeGateway
from tests.ledger.helpers import wait_rows
from tests.ledger.reconcile_helpers import configure, gateway_settings, ping, reconcile_until


async def test_a_pass_settles_exact_outcomes_and_payouts(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    sandbox_url, app = sandbox
    async with make_gateway(**gateway_settings(sandbox_url)) as gw:
        await configure(
            client, sandbox_url, call_rate=1.0, convert_rate=1.0, call_after_ms=300, ttl_s=1
        )
        called = [await ping(client, gw, f"+1855848550{n}") for n in range(3)]
        await configure(client, sandbox_url, call_rate=0.0, ttl_s=1)
        missed = [await ping(client, gw, f"+1855848560{n}", "pub-2") for n in range(2)]
        confirm = await client.put(
            f"{gw}/rtbs/{missed[0]['uuid']}.json", json={"key": RTB_KEY, "status": "confirmed"}
        )
        assert confirm.status_code == 200, confirm.text
        await wait_rows(client, gw, 6)

        summaries = await reconcile_until(client, gw, settled=5)
        rows = await wait_rows(client, gw, 6)
        again = (await client.post(f"{gw}/admin/reconcile")).json()
        metrics = (await client.get(f"{gw}/metrics")).text

    totals = {k: sum(s[k] for s in summaries) for k in ("called", "not_called", "settled")}
    assert totals == {"called": 3, "not_called": 2, "settled": 5}
    assert all(s["errors"] == 0 and s["ran"] for s in summaries)
    calls = {c.uuid: c for c in app.state.core_api.data.by_company[1].calls}
    by_uuid = {r["reservation_uuid"]: r for r in rows if r["route"] == "/rtbs.json"}
    for reservation in called:
        row = by_uuid[reservation["uuid"]]
        assert row["call_outcome"] == "called"
        assert row["converted"] is True
        assert row["payout_earned"] == reservation["retreaver_payout"] == 5.0
        call = calls[row["call_uuid"]]
        assert call.v2["number"] == reservation["inbound_number"]
    assert len({by_uuid[r["uuid"]]["call_uuid"] for r in called}) == 3
    for reservation in missed:
        row = by_uuid[reservation["uuid"]]
        assert (row["call_outcome"], row["call_uuid"], row["payout_earned"]) == (
            "not_called",
            None,
            None,
        )
    # A second pass re-reads the calls and changes nothing.
    assert again["settled"] == 0
    assert again["matched"] == 0
    assert "gateway_confirmed_not_called_total 1.0" in metrics
    assert 'gateway_reconcile_outcomes_total{call_outcome="called"} 3.0' in metrics
    # Secrets and caller numbers never reach the answers or metrics.
    assert SANDBOX_API_KEY not in metrics
    assert "+18558485500" not in str(summaries)


async def test_reconcile_is_409_when_off_and_behind_admin_auth(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        resp = await client.post(f"{gw}/admin/reconcile")
        assert resp.status_code == 409
        assert resp.json()["error"] == "reconcile_off"
        assert "GATEWAY_RECONCILE_API_KEY" in resp.json()["message"]
    from gateway.config import Secret

    settings = gateway_settings(sandbox_url, admin_token=Secret("t" * 20))
    async with make_gateway(**settings) as gw:
        assert (await client.post(f"{gw}/admin/reconcile")).status_code == 401


def test_the_sandbox_key_reconciliation_uses_sees_company_1() -> None:
    assert API_KEYS[SANDBOX_API_KEY].active == 1


async def test_the_confirm_guard_refuses_a_publisher_whose_confirms_go_uncalled(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    settings = gateway_settings(
        sandbox_url, confirm_guard="on", confirm_guard_window=2, confirm_guard_min_rate=0.5
    )
    async with make_gateway(**settings) as gw:
        await configure(client, sandbox_url, call_rate=0.0, ttl_s=1)
        for n in range(2):
            reservation = await ping(client, gw, f"+1855848580{n}", "pub-lazy")
            confirmed = await client.put(
                f"{gw}/rtbs/{reservation['uuid']}.json",
                json={"key": RTB_KEY, "status": "confirmed"},
            )
            assert confirmed.status_code == 200
        await wait_rows(client, gw, 4)
        await reconcile_until(client, gw, settled=2)
        third = await ping(client, gw, "+18558485809", "pub-lazy")
        refused = await client.put(
            f"{gw}/rtbs/{third['uuid']}.json", json={"key": RTB_KEY, "status": "confirmed"}
        )
        other = await ping(client, gw, "+18558485810", "pub-good")
        allowed = await client.put(
            f"{gw}/rtbs/{other['uuid']}.json", json={"key": RTB_KEY, "status": "confirmed"}
        )
        metrics = (await client.get(f"{gw}/metrics")).text
    assert refused.status_code == 429
    assert refused.headers["x-outcome"] == "rate_limited"
    assert refused.json()["error"] == "rate_limited"
    assert allowed.status_code == 200
    assert 'gateway_confirm_guard_total{verdict="refused"} 1.0' in metrics
    assert "gateway_confirmed_not_called_total 2.0" in metrics
