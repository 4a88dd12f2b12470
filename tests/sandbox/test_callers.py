"""The sandbox's callers: reservations followed by calls in the Core API's call log."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from gateway.sandbox.callers import Callers
from tests.conftest import RTB_KEY

CALLER = "+18558485599"


async def _reserve(client: httpx.AsyncClient, url: str, **config: Any) -> dict[str, Any]:
    await client.post(f"{url}/_sandbox/config", json=config)
    resp = await client.post(
        f"{url}/rtbs.json",
        json={"key": RTB_KEY, "publisher_id": "p", "caller_number": CALLER},
    )
    assert resp.status_code == 200
    return resp.json()


async def test_a_called_reservation_shows_in_every_call_log_version(
    sandbox_url: str, client: httpx.AsyncClient
) -> None:
    reservation = await _reserve(
        client, sandbox_url, call_rate=1.0, convert_rate=1.0, call_after_ms=0
    )
    window = {
        "api_key": "barkbarkbark",
        "company_id": "1",
        "caller": CALLER,
        "created_at_start": (datetime.now().astimezone() - timedelta(minutes=1)).isoformat(),
        "order": "asc",
    }
    v2 = (await client.get(f"{sandbox_url}/api/v2/calls.json", params=window)).json()
    assert len(v2) == 1
    call = v2[0]["call"]
    assert call["number"] == reservation["inbound_number"]
    assert call["converted"] is True
    assert call["payout"] == reservation["retreaver_payout"]
    v4 = (await client.get(f"{sandbox_url}/api/v4/calls.json", params=window)).json()
    assert v4[0]["call"]["number"]["number"] == reservation["inbound_number"]
    assert "campaign" in v4[0]["call"]
    v1 = (await client.get(f"{sandbox_url}/api/v1/calls.json", params=window)).json()
    assert v1[0]["call"]["uuid"] == call["uuid"]
    # Another company's key does not see it.
    other = {**window, "api_key": "meowmeowmeow", "company_id": "3"}
    assert (await client.get(f"{sandbox_url}/api/v2/calls.json", params=other)).json() == []


async def test_no_call_at_rate_zero_and_the_share_follows_the_rate(
    sandbox_url: str, client: httpx.AsyncClient
) -> None:
    await _reserve(client, sandbox_url, call_rate=0.0)
    params = {"api_key": "barkbarkbark", "caller": CALLER}
    assert (await client.get(f"{sandbox_url}/api/v2/calls.json", params=params)).json() == []
    callers = Callers(0.6, seed=1)
    from gateway.sandbox.api.seeding import seed

    data = seed()
    now = datetime.now().astimezone()
    made = sum(
        callers.after_reservation(
            data,
            {},
            caller=CALLER,
            inbound="+18772435010",
            payout=5.0,
            now=now,
            expires=now + timedelta(seconds=60),
        )
        is not None
        for _ in range(1000)
    )
    assert 540 <= made <= 660
    created = [c.created_at for c in data.by_company[1].calls if c.caller == CALLER]
    assert all(now < t <= now + timedelta(seconds=30) for t in created)
