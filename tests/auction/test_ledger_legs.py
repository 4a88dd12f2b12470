"""An auction in the ledger: the request as leg 0 with its winner, and one event per leg."""

from __future__ import annotations

import json

import httpx

from tests.auction.conftest import Bid, Buyers, WriteAuctions, ping, wait_for
from tests.conftest import MakeGateway


async def _events(client: httpx.AsyncClient, gw: str) -> list[dict[str, object]]:
    text = (await client.get(f"{gw}/admin/ledger.ndjson")).text
    return [json.loads(line) for line in text.splitlines() if line]


async def test_a_parallel_auction_leaves_its_request_and_every_leg_in_the_ledger(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids.update({"k-a": Bid(payout=10.0), "k-b": Bid(payout=30.5), "k-c": Bid(payout=5.0)})
    path = write_auctions(
        [
            {
                "name": "par",
                "key": "auction-par",
                "mode": "parallel",
                "budget_ms": 2000,
                "destinations": [
                    {"name": "a", "key": "k-a", "priority": 1},
                    {"name": "b", "key": "k-b", "priority": 2},
                    {"name": "c", "key": "k-c", "priority": 3, "floor": 6},
                ],
            }
        ]
    )
    async with (
        make_gateway(rtb_upstream_url=buyers.url, auctions_file=path) as gw,
        httpx.AsyncClient() as client,
    ):
        resp = await client.post(
            f"{gw}/rtbs.json",
            json=ping("auction-par", sub_id="s9"),
            headers={"X-Request-ID": "r-1"},
        )
        assert resp.headers["x-outcome"] == "reserved"
        events = await wait_for(lambda: _legs_written(client, gw))
    by_leg = {e["leg"]: e for e in events if e["request_id"] == "r-1"}
    assert sorted(by_leg) == [0, 1, 2, 3]
    request = by_leg[0]
    assert (request["outcome"], request["auction"], request["destination"]) == (
        "reserved",
        "par",
        "b",
    )
    assert request["payout"] == 30.5
    legs = {e["destination"]: e for leg, e in by_leg.items() if leg}
    assert {d: e["outcome"] for d, e in legs.items()} == {
        "a": "lost",
        "b": "reserved",
        "c": "below_floor",
    }
    assert legs["a"]["payout"] == 10.0
    for event in by_leg.values():
        assert event["auction"] == "par"
        assert (event["publisher_id"], event["sub_id"]) == ("pub-1", "s9")
        # The auction key's digest; no destination key anywhere in the export.
        assert event["key_id"] == request["key_id"]
    text = json.dumps(events)
    for secret in ("k-a", "k-b", "k-c", "auction-par"):
        assert secret not in text


async def _legs_written(client: httpx.AsyncClient, gw: str) -> list[dict[str, object]] | None:
    events = await _events(client, gw)
    return events if len([e for e in events if e["request_id"] == "r-1"]) == 4 else None
