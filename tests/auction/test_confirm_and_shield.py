"""Confirm routing and the shield for auctions: the winner is confirmed at its
destination with its key, anything else is 404 and never forwarded; a repeat gets the
winning answer. In process, and across two replicas sharing a real redis-server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import redis

from gateway.config import Secret
from tests.auction.conftest import Bid, Buyers, WriteAuctions, buyers_server, metric, ping
from tests.conftest import MakeGateway
from tests.support.redis_server import RedisServer

CONFIRM = {"key": "auction-c", "status": "confirmed"}


def parallel_auction(winner_url: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "c",
            "key": "auction-c",
            "mode": "parallel",
            "budget_ms": 2000,
            "destinations": [
                {"name": "low", "key": "k-low"},
                {"name": "high", "key": "k-high", "upstream": winner_url},
            ],
        }
    ]


async def test_only_the_winner_is_confirmed_at_its_destination_with_its_key(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids["k-low"] = Bid(payout=1.0)
    async with buyers_server({"k-high": Bid(payout=9.0)}) as high:
        path = write_auctions(parallel_auction(high.url))
        async with (
            make_gateway(rtb_upstream_url=buyers.url, auctions_file=path) as gw,
            httpx.AsyncClient() as client,
        ):
            won = await client.post(f"{gw}/rtbs.json", json=ping("auction-c"))
            assert won.headers["x-auction-winner"] == "high"
            uuid = won.json()["uuid"]
            loser = buyers.uuid_for("k-low")

            confirmed = await client.put(f"{gw}/rtbs/{uuid}.json", json=CONFIRM)
            assert confirmed.status_code == 200
            assert confirmed.json()["status"] == "confirmed"
            assert confirmed.headers["x-outcome"] == "confirmed"
            confirms = [s for s in high.seen if s.method == "PUT"]
            assert [(s.path, s.fields) for s in confirms] == [
                (f"/rtbs/{uuid}.json", {"key": "k-high", "status": "confirmed"})
            ]

            # The losing reservation and a uuid never seen: 404, nothing forwarded.
            for other in (loser, "c6e4ce37-9b49-46af-bd8e-16cb7753499d"):
                refused = await client.patch(f"{gw}/rtbs/{other}.json", json=CONFIRM)
                assert refused.status_code == 404
                assert refused.json()["error"] == "not_found"
            assert not [s for s in buyers.seen if s.method != "POST"]
            assert len([s for s in high.seen if s.method != "POST"]) == 1
            assert await metric(client, gw, "gateway_auction_confirms_refused_total") == 2
            assert await metric(client, gw, "gateway_auction_loser_confirmations_total") == 0

            # The shielded copy now says confirmed, as for a plain ping.
            repeat = await client.post(f"{gw}/rtbs.json", json=ping("auction-c"))
            assert repeat.json()["status"] == "confirmed"


async def test_a_repeat_gets_the_winning_answer_from_the_shield(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids.update({"k-low": Bid(payout=1.0), "k-high": Bid(payout=9.0)})
    path = write_auctions(parallel_auction(buyers.url))
    async with (
        make_gateway(rtb_upstream_url=buyers.url, auctions_file=path) as gw,
        httpx.AsyncClient() as client,
    ):
        first = await client.post(f"{gw}/rtbs.json", json=ping("auction-c"))
        repeat = await client.post(f"{gw}/rtbs.json", json=ping("auction-c"))
    assert first.headers["x-shield"] == "miss"
    assert repeat.headers["x-shield"] == "hit"
    assert repeat.headers["x-outcome"] == "repeat"
    assert repeat.json() == {**first.json(), "retreaver_ping_shield": True}
    assert len(buyers.seen) == 2  # one auction of two legs; the repeat pinged no one


async def test_replicas_sharing_redis_shield_and_route_confirms(
    redis_server: RedisServer,
    buyers: Buyers,
    write_auctions: WriteAuctions,
    make_gateway: MakeGateway,
) -> None:
    buyers.bids.update({"k-low": Bid(payout=1.0), "k-high": Bid(payout=9.0)})
    path = write_auctions(parallel_auction(buyers.url))
    settings = dict(
        rtb_upstream_url=buyers.url,
        auctions_file=path,
        redis_url=Secret(redis_server.url),
    )
    async with (
        make_gateway(**settings) as one,
        make_gateway(**settings) as two,
        httpx.AsyncClient() as client,
    ):
        won = await client.post(f"{one}/rtbs.json", json=ping("auction-c"))
        repeat = await client.post(f"{two}/rtbs.json", json=ping("auction-c"))
        assert repeat.headers["x-shield"] == "hit"
        assert json.loads(repeat.content)["uuid"] == won.json()["uuid"]
        # Confirmed through the other replica: it finds the route in Redis.
        confirmed = await client.put(f"{two}/rtbs/{won.json()['uuid']}.json", json=CONFIRM)
        assert confirmed.json()["status"] == "confirmed"
        loser = buyers.uuid_for("k-low")
        assert (await client.put(f"{one}/rtbs/{loser}.json", json=CONFIRM)).status_code == 404
    puts = [s for s in buyers.seen if s.method == "PUT"]
    assert [s.fields["key"] for s in puts] == ["k-high"]
    # Neither key appears in Redis' key names: digests only.
    names = redis.Redis.from_url(redis_server.url).keys("*")
    assert names
    assert not [n for n in names if b"k-high" in n or b"auction-c" in n]
