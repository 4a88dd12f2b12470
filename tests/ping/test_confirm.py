"""PUT|PATCH /rtbs/{uuid}.json: validated, forwarded, answered as the upstream answers."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx
import pytest

from tests.conftest import RTB_KEY, MakeGateway

PING = {"key": RTB_KEY, "publisher_id": "pub", "caller_number": "+18558485518"}


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_confirm_is_forwarded(
    method: str,
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    client: httpx.AsyncClient,
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url) as gw:
        reserved = (await client.post(f"{gw}/rtbs.json", json=PING)).json()
        resp = await client.request(
            method, f"{gw}/rtbs/{reserved['uuid']}.json?key={RTB_KEY}&status=confirmed"
        )
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "confirmed"
    assert body["uuid"] == reserved["uuid"]
    assert body["sip_address"]
    last = app.state.sandbox.received[-1]
    assert last["method"] == method
    assert last["fields"] == {"key": RTB_KEY, "status": "confirmed"}


async def test_confirm_answers_no_target_when_caps_filled(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        reserved = (
            await client.post(
                f"{gw}/rtbs.json", json={**PING, "sandbox_outcome": "confirm-no-target"}
            )
        ).json()
        resp = await client.put(
            f"{gw}/rtbs/{reserved['uuid']}.json",
            json={"key": RTB_KEY, "status": "confirmed"},
        )
    assert resp.json() == {"uuid": reserved["uuid"], "status": "no-target"}


async def test_invalid_confirmations_are_refused_and_not_forwarded(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    good = "c6e4ce37-9b49-46af-bd8e-16cb7753499d"
    async with make_gateway(rtb_upstream_url=url) as gw:
        bad_uuid = await client.put(f"{gw}/rtbs/not-a-uuid.json?key={RTB_KEY}&status=confirmed")
        no_key = await client.put(f"{gw}/rtbs/{good}.json?status=confirmed")
        bad_status = await client.put(f"{gw}/rtbs/{good}.json?key={RTB_KEY}&status=reserved")
        unknown = await client.put(f"{gw}/rtbs/{good}.json?key={RTB_KEY}&status=confirmed")
    assert bad_uuid.status_code == 422
    assert set(bad_uuid.json()["fields"]) == {"uuid"}
    assert no_key.status_code == 422
    assert set(no_key.json()["fields"]) == {"key"}
    assert bad_status.status_code == 422
    assert set(bad_status.json()["fields"]) == {"status"}
    assert unknown.status_code == 404  # the upstream's answer, passed through
    assert [r["path"] for r in app.state.sandbox.received] == [f"/rtbs/{good}.json"]


async def test_confirmations_pass_the_key_rate_limit_like_pings(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    """2/s per key (bursts of 2): of 40 confirmations sent at once, only the few the
    bucket holds reach the upstream; the rest get 429 with Retry-After, not forwarded."""
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, rate_limit_per_key="2/s") as gw:
        reserved = (await client.post(f"{gw}/rtbs.json", json=PING)).json()
        target = f"{gw}/rtbs/{reserved['uuid']}.json?key={RTB_KEY}&status=confirmed"
        started = time.monotonic()
        answers = await asyncio.gather(*(client.put(target) for _ in range(40)))
        elapsed = time.monotonic() - started
        metrics = (await client.get(f"{gw}/metrics")).text
    limited = [r for r in answers if r.status_code == 429]
    passed = [r for r in answers if r.status_code != 429]
    # The ping spent one of the burst's 2; the bucket refills at 2/s while they run.
    assert len(passed) <= 1 + math.ceil(2 * elapsed), (len(passed), elapsed)
    assert len(limited) >= 40 - (1 + math.ceil(2 * elapsed))
    assert len(passed) >= 1  # the limit refuses the excess, not every confirmation
    for r in limited:
        assert r.json()["error"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
    confirms = [r for r in app.state.sandbox.received if r["method"] in ("PUT", "PATCH")]
    assert len(confirms) == len(passed)  # a refused confirmation is never forwarded
    assert f'gateway_protect_refusals_total{{reason="rate_limited"}} {len(limited)}.0' in metrics


async def test_confirmations_and_pings_spend_from_one_bucket(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, rate_limit_per_key="2/h") as gw:
        reserved = (await client.post(f"{gw}/rtbs.json", json=PING)).json()
        target = f"{gw}/rtbs/{reserved['uuid']}.json?key={RTB_KEY}&status=confirmed"
        first = await client.put(target)
        second = await client.patch(target)
        ping = await client.post(f"{gw}/rtbs.json", json={**PING, "caller_number": "+18558485530"})
    assert (first.status_code, second.status_code, ping.status_code) == (200, 429, 429)
    assert "confirmations" in second.json()["message"]
    assert len(app.state.sandbox.received) == 2  # one ping, one confirmation


async def test_confirmations_naming_a_publisher_pass_its_rate_limit(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    """A confirmation that names its publisher spends from that publisher's bucket (the
    name is not forwarded); one that names none is held to the key's limits only."""
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, rate_limit_per_publisher="1/h") as gw:
        reserved = (await client.post(f"{gw}/rtbs.json", json=PING)).json()
        base = f"{gw}/rtbs/{reserved['uuid']}.json?key={RTB_KEY}&status=confirmed"
        named = await client.put(f"{base}&publisher_id=pub")
        aliased = await client.put(f"{base}&source_id=pub")
        unnamed = await client.put(base)
    assert (named.status_code, aliased.status_code, unnamed.status_code) == (429, 429, 200)
    assert named.json()["error"] == "rate_limited"
    confirms = [r for r in app.state.sandbox.received if r["method"] in ("PUT", "PATCH")]
    assert len(confirms) == 1
    assert confirms[0]["fields"] == {"key": RTB_KEY, "status": "confirmed"}
