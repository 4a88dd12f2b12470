"""Waterfall and parallel auctions against real buyers on 127.0.0.1: order, best bid,
floors, ties, the budget against a hanging destination, late bids, breakers."""

from __future__ import annotations

import json
import time

import httpx

from tests.auction.conftest import (
    Bid,
    Buyers,
    WriteAuctions,
    buyers_server,
    metric,
    ping,
    wait_for,
)
from tests.conftest import MakeGateway


def dest(name: str, key: str, **more: object) -> dict[str, object]:
    return {"name": name, "key": key, **more}


async def test_waterfall_tries_in_priority_order_and_stops_at_the_first_bid(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids.update(
        {"k-a": Bid(no_target=True), "k-b": Bid(payout=10.0), "k-c": Bid(payout=50.0)}
    )
    path = write_auctions(
        [
            {
                "name": "wf",
                "key": "auction-wf",
                "budget_ms": 2000,
                # File order differs from priority order on purpose.
                "destinations": [
                    dest("c", "k-c", priority=3),
                    dest("a", "k-a", priority=1),
                    dest("b", "k-b", priority=2),
                ],
            }
        ]
    )
    async with (
        make_gateway(rtb_upstream_url=buyers.url, auctions_file=path) as gw,
        httpx.AsyncClient() as client,
    ):
        resp = await client.post(f"{gw}/rtbs.json", json=ping("auction-wf", sub_id="s1"))
    assert resp.status_code == 200
    assert buyers.keys_seen() == ["k-a", "k-b"]  # c is never pinged
    assert resp.headers["x-auction-winner"] == "b"
    assert resp.headers["x-outcome"] == "reserved"
    assert resp.content == buyers.answer_for("k-b")  # byte-for-byte
    # Validated once, forwarded with each destination's own key and the same fields.
    first, second = (s.fields for s in buyers.seen)
    assert {**first, "key": "x"} == {**second, "key": "x"}
    assert first["sub_id"] == "s1"
    assert first["caller_number"] == "+18558485518"


async def test_parallel_pings_all_and_keeps_the_highest_bid(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids.update(
        {"k-a": Bid(payout=10.0), "k-b": Bid(payout=30.5), "k-c": Bid(payout=20.0, delay_s=0.05)}
    )
    path = write_auctions(
        [
            {
                "name": "par",
                "key": "auction-par",
                "mode": "parallel",
                "budget_ms": 2000,
                "destinations": [dest("a", "k-a"), dest("b", "k-b"), dest("c", "k-c")],
            }
        ]
    )
    async with (
        make_gateway(rtb_upstream_url=buyers.url, auctions_file=path) as gw,
        httpx.AsyncClient() as client,
    ):
        resp = await client.post(f"{gw}/rtbs.json", json=ping("auction-par"))
        assert sorted(buyers.keys_seen()) == ["k-a", "k-b", "k-c"]
        assert resp.headers["x-auction-winner"] == "b"
        assert resp.content == buyers.answer_for("k-b")
        lost = 'gateway_auction_legs_total{auction="par",destination="a",outcome="lost"}'
        won = 'gateway_auction_legs_total{auction="par",destination="b",outcome="reserved"}'
        assert await metric(client, gw, lost) == 1
        assert await metric(client, gw, won) == 1


async def test_floors_and_ties(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids.update(
        {
            "k-rich": Bid(payout=90.0),  # under its own floor of 100
            "k-one": Bid(payout=25.0),
            "k-two": Bid(payout=25.0),
        }
    )
    path = write_auctions(
        [
            {
                "name": "tie",
                "key": "auction-tie",
                "mode": "parallel",
                "budget_ms": 2000,
                "destinations": [
                    dest("rich", "k-rich", floor=100),
                    dest("two", "k-two", priority=2),
                    dest("one", "k-one", priority=1),
                ],
            }
        ]
    )
    async with (
        make_gateway(rtb_upstream_url=buyers.url, auctions_file=path) as gw,
        httpx.AsyncClient() as client,
    ):
        resp = await client.post(f"{gw}/rtbs.json", json=ping("auction-tie"))
        assert resp.headers["x-auction-winner"] == "one"  # tie: the lower priority
        below = 'gateway_auction_legs_total{auction="tie",destination="rich",outcome="below_floor"}'
        assert await metric(client, gw, below) == 1


async def test_a_bid_under_every_floor_is_no_bid(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids["k-a"] = Bid(payout=4.0)
    path = write_auctions(
        [
            {
                "name": "fl",
                "key": "auction-fl",
                "budget_ms": 1000,
                "destinations": [dest("a", "k-a", floor=5)],
            }
        ]
    )
    async with (
        make_gateway(rtb_upstream_url=buyers.url, auctions_file=path) as gw,
        httpx.AsyncClient() as client,
    ):
        resp = await client.post(f"{gw}/rtbs.json", json=ping("auction-fl"))
    assert (resp.status_code, resp.json()) == (200, {"status": "no-target"})
    assert resp.headers["x-outcome"] == "no_bid"
    assert "x-auction-winner" not in resp.headers


async def test_a_hanging_destination_does_not_hold_the_answer_past_the_budget(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids.update({"k-hang": Bid(hang=True), "k-ok": Bid(payout=12.0)})
    path = write_auctions(
        [
            {
                "name": "h",
                "key": "auction-h",
                "mode": "parallel",
                "budget_ms": 300,
                "destinations": [
                    dest("hang", "k-hang", timeout_ms=30_000, priority=1),
                    dest("ok", "k-ok", priority=2),
                ],
            }
        ]
    )
    async with (
        make_gateway(rtb_upstream_url=buyers.url, auctions_file=path) as gw,
        httpx.AsyncClient() as client,
    ):
        started = time.perf_counter()
        resp = await client.post(f"{gw}/rtbs.json", json=ping("auction-h"))
        elapsed = time.perf_counter() - started
        # Bounded by the budget, not by the hanging leg's 30 s timeout.
        assert elapsed < 5
        assert resp.headers["x-auction-winner"] == "ok"
        # Every destination hanging: a no-bid within the budget, not a 504.
        buyers.bids["k-ok"] = Bid(hang=True)
        started = time.perf_counter()
        none = await client.post(f"{gw}/rtbs.json", json=ping("auction-h", caller="+18558485510"))
        assert time.perf_counter() - started < 5
        assert (none.status_code, none.json()) == (200, {"status": "no-target"})
        assert none.headers["x-outcome"] == "no_bid"


async def test_a_bid_after_the_budget_is_late_and_never_chosen(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids.update({"k-slow": Bid(payout=99.0, delay_s=0.5), "k-ok": Bid(payout=1.0)})
    path = write_auctions(
        [
            {
                "name": "late",
                "key": "auction-late",
                "mode": "parallel",
                "budget_ms": 200,
                "destinations": [
                    dest("slow", "k-slow", timeout_ms=3000),
                    dest("ok", "k-ok"),
                ],
            }
        ]
    )
    async with (
        make_gateway(rtb_upstream_url=buyers.url, auctions_file=path) as gw,
        httpx.AsyncClient() as client,
    ):
        resp = await client.post(f"{gw}/rtbs.json", json=ping("auction-late"))
        assert resp.headers["x-auction-winner"] == "ok"
        late = 'gateway_auction_legs_total{auction="late",destination="slow",outcome="late"}'
        await wait_for(lambda: metric(client, gw, late))
        # The late bid was not confirmed, and cannot be through the gateway.
        slow_uuid = buyers.uuid_for("k-slow")
        refused = await client.put(
            f"{gw}/rtbs/{slow_uuid}.json", json={"key": "auction-late", "status": "confirmed"}
        )
        assert refused.status_code == 404
    assert not any(s.method == "PUT" for s in buyers.seen)


async def test_all_destinations_down_is_a_no_bid_never_a_5xx(
    write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    async with buyers_server({"k-err": Bid(status=500)}) as erring:
        path = write_auctions(
            [
                {
                    "name": "down",
                    "key": "auction-down",
                    "mode": "parallel",
                    "budget_ms": 500,
                    "destinations": [
                        dest("closed", "k-a", upstream="http://127.0.0.1:9"),
                        dest("erring", "k-err", upstream=erring.url),
                    ],
                }
            ]
        )
        async with (
            make_gateway(auctions_file=path) as gw,
            httpx.AsyncClient() as client,
        ):
            resp = await client.post(f"{gw}/rtbs.json", json=ping("auction-down"))
            assert (resp.status_code, resp.json()) == (200, {"status": "no-target"})
            assert resp.headers["x-outcome"] == "no_bid"
            prefix = 'gateway_auction_legs_total{auction="down",destination='
            assert await metric(client, gw, prefix + '"closed",outcome="upstream_error"}') == 1
            assert await metric(client, gw, prefix + '"erring",outcome="upstream_refused"}') == 1


async def test_a_destination_with_an_open_breaker_is_skipped(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids["k-good"] = Bid(payout=3.0)
    async with buyers_server({"k-bad": Bid(status=503)}) as failing:
        path = write_auctions(
            [
                {
                    "name": "br",
                    "key": "auction-br",
                    "budget_ms": 1000,
                    "destinations": [
                        dest("bad", "k-bad", upstream=failing.url, priority=1),
                        dest("good", "k-good", priority=2),
                    ],
                }
            ]
        )
        async with (
            make_gateway(
                rtb_upstream_url=buyers.url,
                auctions_file=path,
                breaker_failures=2,
                breaker_open_s=60,
            ) as gw,
            httpx.AsyncClient() as client,
        ):
            for n in range(4):
                resp = await client.post(
                    f"{gw}/rtbs.json", json=ping("auction-br", caller=f"+1855848550{n}")
                )
                assert resp.headers["x-auction-winner"] == "good"
            shed = 'gateway_auction_legs_total{auction="br",destination="bad",outcome="shed"}'
            assert await metric(client, gw, shed) == 2
        # Two failures opened its breaker; the next two auctions never sent it a ping.
        assert len(failing.seen) == 2
        assert json.loads(json.dumps(buyers.keys_seen())) == ["k-good"] * 4


async def test_a_waterfall_stops_when_its_budget_is_spent(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids.update({"k-hang": Bid(hang=True), "k-next": Bid(payout=80.0)})
    path = write_auctions(
        [
            {
                "name": "wfb",
                "key": "auction-wfb",
                "budget_ms": 200,
                "destinations": [
                    dest("hang", "k-hang", timeout_ms=10_000),
                    dest("next", "k-next"),
                ],
            }
        ]
    )
    async with (
        make_gateway(rtb_upstream_url=buyers.url, auctions_file=path) as gw,
        httpx.AsyncClient() as client,
    ):
        resp = await client.post(f"{gw}/rtbs.json", json=ping("auction-wfb"))
    assert (resp.status_code, resp.json()) == (200, {"status": "no-target"})
    assert buyers.keys_seen() == ["k-hang"]  # the budget went to the first; no second ping


async def test_pings_without_a_caller_run_the_auction_unshielded(
    buyers: Buyers, write_auctions: WriteAuctions, make_gateway: MakeGateway
) -> None:
    buyers.bids["k-a"] = Bid(payout=7.0)
    path = write_auctions(
        [{"name": "nc", "key": "auction-nc", "budget_ms": 1000, "destinations": [dest("a", "k-a")]}]
    )
    body = {"key": "auction-nc", "publisher_id": "pub-1"}
    async with (
        make_gateway(
            rtb_upstream_url=buyers.url, auctions_file=path, rtb_caller_number="optional"
        ) as gw,
        httpx.AsyncClient() as client,
    ):
        first = await client.post(f"{gw}/rtbs.json", json=body)
        second = await client.post(f"{gw}/rtbs.json", json=body)
    assert [r.headers["x-shield"] for r in (first, second)] == ["none", "none"]
    assert [r.headers["x-auction-winner"] for r in (first, second)] == ["a", "a"]
    assert "caller_number" not in buyers.seen[0].fields
    assert len(buyers.seen) == 2
