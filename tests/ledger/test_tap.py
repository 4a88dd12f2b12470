"""X-Outcome on every publisher answer, its metric, and one ledger event per request."""

from __future__ import annotations

import re
from typing import Any

import httpx

from gateway.config import Secret
from gateway.ledger.events import ROW_FIELDS
from tests.conftest import RTB_KEY, MakeGateway
from tests.ledger.helpers import wait_rows

CALLER = "+18558485518"
DATA_KEY = "0b4d1a57-6c53-4c1e-9f0e-5d2a8f6b7c10"  # the sandbox's data-writing key
PING = {"key": RTB_KEY, "publisher_id": "pub-1", "caller_number": CALLER, "sub_id": "s-9"}
AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def test_every_publisher_answer_carries_its_outcome(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    async with make_gateway(
        rtb_upstream_url=url, data_writing_url=url, rate_limit_per_publisher="greedy=1/h"
    ) as gw:
        first = await client.post(f"{gw}/rtbs.json", json=PING)
        repeat = await client.post(f"{gw}/rtbs.json", json=PING)
        no_bid = await client.post(
            f"{gw}/rtbs.json",
            json={**PING, "caller_number": "+18558485519", "sandbox_outcome": "no-target"},
        )
        invalid = await client.post(f"{gw}/rtbs.json", json={"key": RTB_KEY})
        # Confirmations spend from the key's bucket too, so the limit is on one publisher.
        greedy = {**PING, "publisher_id": "greedy", "caller_number": "+18558485520"}
        await client.post(f"{gw}/rtbs.json", json=greedy)
        limited = await client.post(
            f"{gw}/rtbs.json", json={**greedy, "caller_number": "+18558485522"}
        )
        uuid = first.json()["uuid"]
        other_key = "other-key-1"
        confirm = await client.put(
            f"{gw}/rtbs/{uuid}.json", json={"key": RTB_KEY, "status": "confirmed"}
        )
        bad_confirm = await client.put(f"{gw}/rtbs/nope.json", json={"key": other_key})
        refused = await client.post(
            f"{gw}/rtbs.json",
            json={**PING, "key": other_key, "caller_number": "+18558485521", "sandbox_status": 500},
        )
        metrics = (await client.get(f"{gw}/metrics")).text
        unrelated = await client.get(f"{gw}/healthz")

    assert first.headers["x-outcome"] == "reserved"
    assert first.json()["status"] == "reserved"
    assert repeat.headers["x-outcome"] == "repeat"
    assert no_bid.headers["x-outcome"] == "no_bid"
    assert invalid.status_code == 422
    assert invalid.headers["x-outcome"] == "invalid"
    assert limited.status_code == 429
    assert limited.headers["x-outcome"] == "rate_limited"
    assert confirm.headers["x-outcome"] == "confirmed"
    assert bad_confirm.headers["x-outcome"] == "invalid"
    assert refused.status_code == 500
    assert refused.headers["x-outcome"] == "upstream_refused"
    assert refused.json() == {"error": "sandbox error 500"}
    assert "x-outcome" not in unrelated.headers
    # first and greedy's first ping
    assert 'gateway_outcomes_total{outcome="reserved",route="/rtbs.json"} 2.0' in metrics
    assert 'gateway_outcomes_total{outcome="repeat",route="/rtbs.json"} 1.0' in metrics
    assert 'gateway_outcomes_total{outcome="confirmed",route="/rtbs/{uuid}.json"} 1.0' in metrics


async def test_bodies_stay_byte_for_byte(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    async with make_gateway(rtb_upstream_url=url) as gw:
        garbage = await client.post(f"{gw}/rtbs.json", json={**PING, "sandbox_outcome": "garbage"})
    assert garbage.content == b"<html>upstream proxy error</html>"
    assert garbage.headers["x-outcome"] == "no_bid"


async def test_data_writing_outcomes(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    async with make_gateway(rtb_upstream_url=url, data_writing_url=url) as gw:
        post = await client.post(
            f"{gw}/data_writing", json={"key": DATA_KEY, "caller_number": CALLER, "age": "30"}
        )
        get = await client.get(f"{gw}/data_writing/{DATA_KEY}", params={"caller_number": CALLER})
        bad = await client.get(f"{gw}/data_writing/{DATA_KEY}")
        rows = await wait_rows(client, gw, 3)
    assert (post.headers["x-outcome"], get.headers["x-outcome"]) == ("written", "written")
    assert bad.status_code == 422
    assert bad.headers["x-outcome"] == "invalid"
    assert [r["outcome"] for r in rows] == ["written", "written", "invalid"]
    assert [r["route"] for r in rows] == [
        "/data_writing",
        "/data_writing/{key}",
        "/data_writing/{key}",
    ]


async def test_each_request_leaves_one_complete_event(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    async with make_gateway(rtb_upstream_url=url, ledger_secret=Secret("s" * 32)) as gw:
        first = await client.post(f"{gw}/rtbs.json", json=PING, headers={"x-request-id": "req-1"})
        await client.post(f"{gw}/rtbs.json", json={"key": RTB_KEY, "publisher_id": "p\u2028x"})
        rows = await wait_rows(client, gw, 2)
    assert len(rows) == 2
    for row in rows:
        assert tuple(row) == ROW_FIELDS  # every field, in the documented order
        assert AT.fullmatch(row["at"])
    reserved, invalid = rows
    answer = first.json()
    assert reserved["request_id"] == "req-1" == first.headers["x-request-id"]
    assert reserved["leg"] == 0
    assert reserved["outcome"] == "reserved"
    assert reserved["status"] == 200
    assert reserved["publisher_id"] == "pub-1"
    assert reserved["sub_id"] == "s-9"
    assert reserved["reservation_uuid"] == answer["uuid"]
    assert reserved["payout"] == answer["retreaver_payout"]
    assert reserved["seconds"] == answer["retreaver_seconds"]
    assert reserved["inbound_number"] == answer["inbound_number"]
    assert reserved["expires_at"] == answer["expires_at"]
    assert reserved["duration_ms"] > 0
    assert 0 < reserved["upstream_ms"] <= reserved["duration_ms"]
    assert reserved["auction"] is None
    assert reserved["call_uuid"] is None
    # Never the number or the key: digests.
    assert re.fullmatch(r"[0-9a-f]{64}", reserved["caller"])
    assert re.fullmatch(r"[0-9a-f]{16}", reserved["key_id"])
    assert CALLER not in str(rows)
    assert RTB_KEY not in str(rows)
    assert invalid["outcome"] == "invalid"
    assert invalid["status"] == 422
    assert invalid["reservation_uuid"] is None


async def test_caller_digests_follow_the_secret(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    digests = []
    for secret in ("a" * 32, "a" * 32, "b" * 32):
        async with make_gateway(rtb_upstream_url=url, ledger_secret=Secret(secret)) as gw:
            await client.post(f"{gw}/rtbs.json", json=PING)
            rows = await wait_rows(client, gw, 1)
        digests.append((rows[0]["caller"], rows[0]["key_id"]))
    assert digests[0] == digests[1]
    assert digests[2][0] != digests[0][0]
    assert digests[2][1] == digests[0][1]  # the key's digest is stable, not keyed


async def test_an_invalid_ping_counts_for_the_publisher_it_named(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    async with make_gateway(rtb_upstream_url=url) as gw:
        bad_caller = await client.post(
            f"{gw}/rtbs.json", json={**PING, "caller_number": "not a number"}
        )
        hostile = await client.post(
            f"{gw}/rtbs.json",
            json={"key": RTB_KEY, "publisher_id": "p\r\nx", "sub_id": "\x00" * 2000},
        )
        broken = await client.post(
            f"{gw}/rtbs.json", content=b"{not json", headers={"content-type": "application/json"}
        )
        rows = await wait_rows(client, gw, 3)
    assert [bad_caller.status_code, hostile.status_code, broken.status_code] == [422, 422, 400]
    named, unnamed, unreadable = rows
    assert (named["publisher_id"], named["sub_id"], named["outcome"]) == ("pub-1", "s-9", "invalid")
    assert named["caller"] is None
    assert named["key_id"] is not None
    assert (unnamed["publisher_id"], unnamed["sub_id"]) == (None, None)
    assert (unreadable["publisher_id"], unreadable["outcome"]) == (None, "invalid")


async def test_the_gateways_own_upstream_failures_have_their_codes(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    from tests.support.ports import free_port

    url, _ = sandbox
    async with make_gateway(rtb_upstream_url=url, rtb_timeout_ms=200) as gw:
        slow = await client.post(f"{gw}/rtbs.json", json={**PING, "sandbox_delay_ms": 2000})
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with make_gateway(rtb_upstream_url=nowhere, breaker_failures=1, breaker_open_s=60) as gw:
        unreachable = await client.post(f"{gw}/rtbs.json", json=PING)
        while_open = await client.post(
            f"{gw}/rtbs.json", json={**PING, "caller_number": "+18558485519"}
        )
        rows = await wait_rows(client, gw, 2)
    assert (slow.status_code, slow.headers["x-outcome"]) == (504, "upstream_timeout")
    assert (unreachable.status_code, unreachable.headers["x-outcome"]) == (502, "upstream_error")
    assert (while_open.status_code, while_open.headers["x-outcome"]) == (503, "shed")
    assert [r["outcome"] for r in rows] == ["upstream_error", "shed"]
    assert rows[1]["upstream_ms"] is None  # nothing was forwarded


async def test_repeats_record_the_reservation_they_were_answered_with(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    """Repeats of two callers, interleaved: each row names its own caller's reservation
    (the tap reads a repeated answer's reservation once and keeps it for the next)."""
    url, _ = sandbox
    other = {**PING, "caller_number": "+18558485530"}
    async with make_gateway(rtb_upstream_url=url) as gw:
        answers = [
            (await client.post(f"{gw}/rtbs.json", json=ping)).json()
            for ping in (PING, other, PING, other, PING)
        ]
        rows = await wait_rows(client, gw, 5)
    assert [r["outcome"] for r in rows] == ["reserved", "reserved", "repeat", "repeat", "repeat"]
    assert answers[0]["uuid"] != answers[1]["uuid"]
    for row, answer in zip(rows, answers, strict=True):
        assert row["reservation_uuid"] == answer["uuid"]
        assert row["payout"] == answer["retreaver_payout"]
        assert row["expires_at"] == answer["expires_at"]
