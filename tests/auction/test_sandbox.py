"""The sandbox's campaigns make the example auction a real choice, and the sandbox
counts confirmations of reservations that lost (the load check's 0)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.auction.conftest import ping
from tests.conftest import MakeGateway

EXAMPLE = Path(__file__).parents[2] / "docs" / "pages" / "examples" / "auctions.toml"


async def test_the_example_auction_over_the_sandbox(
    sandbox: tuple[str, Any], make_gateway: MakeGateway
) -> None:
    url, app = sandbox
    state = app.state.sandbox
    state.random.seed(7)
    winners: dict[str, int] = {}
    async with (
        make_gateway(rtb_upstream_url=url, auctions_file=str(EXAMPLE)) as gw,
        httpx.AsyncClient(timeout=10) as client,
    ):
        for n in range(12):
            resp = await client.post(
                f"{gw}/rtbs.json", json=ping("auction-solar-best", caller=f"+1855848{n:04d}")
            )
            assert resp.status_code == 200
            winner = resp.headers["x-auction-winner"]
            winners[winner] = winners.get(winner, 0) + 1
            expected = 55.0 if winner == "flaky" else 42.0
            assert resp.json()["retreaver_payout"] == expected
            confirmed = await client.put(
                f"{gw}/rtbs/{resp.json()['uuid']}.json",
                json={"key": "auction-solar-best", "status": "confirmed"},
            )
            assert confirmed.json()["status"] == "confirmed"
        counts = (await client.get(f"{url}/_sandbox/auctions")).json()
    # The flaky buyer pays most when it has a target; otherwise premium wins.
    assert set(winners) == {"flaky", "premium"}
    assert counts == {"confirmations": 12, "loser_confirmations": 0}


async def test_the_sandbox_notices_a_second_confirmation_for_one_ping(
    sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    fields = {"publisher_id": "p", "caller_number": "+18558485518"}
    one = (await client.post(f"{url}/rtbs.json", json={**fields, "key": "k1"})).json()
    two = (await client.post(f"{url}/rtbs.json", json={**fields, "key": "k2"})).json()
    for rid, key in ((one["uuid"], "k1"), (two["uuid"], "k2")):
        await client.put(f"{url}/rtbs/{rid}.json", json={"key": key, "status": "confirmed"})
    counts = (await client.get(f"{url}/_sandbox/auctions")).json()
    assert counts == {"confirmations": 2, "loser_confirmations": 1}
