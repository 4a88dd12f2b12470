"""What the auctions keep in memory is bounded, and what is refused is counted."""

from __future__ import annotations

import httpx

from gateway.auction.reservations import MemoryRouteStore, Route, route_digest
from tests.auction.conftest import Bid, Buyers, WriteAuctions, metric, ping, wait_for
from tests.conftest import MakeGateway


async def test_the_route_store_makes_room_from_expired_winners_only() -> None:
    now = [1_000_000]
    store = MemoryRouteStore(2, clock_ms=lambda: now[0])
    route = Route("a", "d")
    assert await store.remember("one", route, now[0] + 100)
    assert await store.remember("two", route, now[0] + 10_000)
    assert not await store.remember("three", route, now[0] + 10_000)  # full of live ones
    assert await store.find("one") == route
    now[0] += 500  # "one" expired: it is never found again, and its room is reused
    assert await store.find("one") is None
    assert await store.remember("four", route, now[0] + 10_000)
    assert len(store) == 2
    assert await store.remember("past", route, now[0] - 1)  # nothing to keep
    assert await store.find("past") is None


def test_route_digests_bind_the_auction_key_and_ignore_uuid_case() -> None:
    uuid = "C6E4CE37-9B49-46AF-BD8E-16CB7753499D"
    assert route_digest("k1", uuid) == route_digest("k1", uuid.lower())
    assert route_digest("k1", uuid) != route_digest("k2", uuid)
    assert "k1" not in route_digest("k1", uuid)


async def test_legs_beyond_the_late_bound_are_cancelled_and_counted(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids.update({"k-hang": Bid(hang=True), "k-ok": Bid(payout=2.0)})
    path = write_auctions(
        [
            {
                "name": "b",
                "key": "auction-b",
                "mode": "parallel",
                "budget_ms": 150,
                "destinations": [
                    {"name": "hang", "key": "k-hang", "timeout_ms": 30_000},
                    {"name": "ok", "key": "k-ok"},
                ],
            }
        ]
    )
    async with (
        make_gateway(
            rtb_upstream_url=buyers.url, auctions_file=path, auction_late_legs_max=1
        ) as gw,
        httpx.AsyncClient() as client,
    ):
        for n in range(3):
            resp = await client.post(f"{gw}/rtbs.json", json=ping("auction-b", f"+185584855{n}0"))
            assert resp.headers["x-auction-winner"] == "ok"
        # One hanging leg is followed; the next two were cancelled at their budget.
        assert await metric(client, gw, "gateway_auction_late_legs_refused_total") == 2
        assert await metric(client, gw, "gateway_auction_late_legs ") == 1
        timeout = (
            'gateway_auction_legs_total{auction="b",destination="hang",outcome="upstream_timeout"}'
        )
        await wait_for(lambda: metric(client, gw, timeout))
