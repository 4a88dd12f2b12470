"""The shield end to end: publisher -> gateway (in this loop) -> sandbox, over real sockets,
with the in-process store and with a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime
from typing import Any

import httpx
import pytest
import redis.asyncio

from gateway.config import Secret
from tests.conftest import RTB_KEY, MakeGateway
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

CALLER = "%2B18558485518"
PING = f"key={RTB_KEY}&publisher_id=retreaver_pub&caller_number={CALLER}"
SHIELD = "retreaver_ping_shield"


@pytest.fixture(params=["memory", "redis"])
def store_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        return {}
    server: RedisServer = request.getfixturevalue("redis_server")
    # A generous Redis timeout: these tests are about semantics, not a busy CI box.
    return {"redis_url": Secret(server.url), "redis_timeout_ms": 1000}


def upstream_count(app: Any) -> int:
    return sum(1 for r in app.state.sandbox.received if r["path"] == "/rtbs.json")


@pytest.fixture
async def many() -> Any:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(timeout=30, limits=limits) as c:
        yield c


async def test_200_concurrent_pings_cause_one_upstream_request(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    store_settings: dict[str, Any],
    many: httpx.AsyncClient,
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, **store_settings) as gw:
        replies = await asyncio.gather(
            *(many.post(f"{gw}/rtbs.json?{PING}&sandbox_delay_ms=300") for _ in range(200))
        )
    assert upstream_count(app) == 1
    assert {r.status_code for r in replies} == {200}
    bodies = [r.json() for r in replies]
    assert len({b["uuid"] for b in bodies}) == 1
    assert sum(1 for b in bodies if b.get(SHIELD) is True) == 199
    shields = Counter(r.headers["x-shield"] for r in replies)
    assert shields["miss"] == 1
    assert shields["coalesced"] + shields["hit"] == 199
    # The one unshielded answer is the upstream's, unchanged.
    first = next(b for b in bodies if SHIELD not in b)
    assert first == {k: v for k, v in bodies[-1].items() if k != SHIELD}


async def test_repeat_is_answered_from_the_store_with_the_shield_flag(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    store_settings: dict[str, Any],
    client: httpx.AsyncClient,
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, **store_settings) as gw:
        first = await client.post(f"{gw}/rtbs.json?{PING}&caller_zip=12344")
        # Same caller in another spelling and with other tags: the same shield key.
        second = await client.post(
            f"{gw}/rtbs.json", json={"key": RTB_KEY, "source_id": "x", "caller_number": 8558485518}
        )
    assert first.headers["x-shield"] == "miss"
    assert SHIELD not in first.json()
    assert second.headers["x-shield"] == "hit"
    assert second.json() == {**first.json(), SHIELD: True}
    assert upstream_count(app) == 1


async def test_repeat_before_expiry_is_a_hit_and_after_is_forwarded(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    store_settings: dict[str, Any],
    client: httpx.AsyncClient,
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, **store_settings) as gw:
        first = await client.post(f"{gw}/rtbs.json?{PING}&sandbox_ttl_s=0.6")
        expires_at = datetime.fromisoformat(first.json()["expires_at"]).timestamp()
        hits = 0
        while True:
            sent = time.time()
            reply = await client.post(f"{gw}/rtbs.json?{PING}&sandbox_ttl_s=0.6")
            if reply.headers["x-shield"] != "hit":
                break
            hits += 1
            # Never served at or after its expires_at (the gateway decided after `sent`).
            assert sent < expires_at
            assert reply.json()["uuid"] == first.json()["uuid"]
            await asyncio.sleep(0.02)
    assert hits >= 1
    assert reply.headers["x-shield"] == "miss"
    assert reply.json()["uuid"] != first.json()["uuid"]
    assert SHIELD not in reply.json()
    assert upstream_count(app) == 2


@pytest.mark.parametrize(
    "tags",
    [
        "sandbox_status=500",
        "sandbox_status=422",
        "sandbox_outcome=no-target",
        "sandbox_outcome=garbage",
        "sandbox_outcome=expired",
    ],
)
async def test_errors_and_unstorable_answers_are_never_stored(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    store_settings: dict[str, Any],
    client: httpx.AsyncClient,
    tags: str,
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, **store_settings) as gw:
        replies = [await client.post(f"{gw}/rtbs.json?{PING}&{tags}") for _ in range(2)]
    assert upstream_count(app) == 2
    assert [r.headers["x-shield"] for r in replies] == ["miss", "miss"]
    assert replies[0].content == replies[1].content or "no-target" not in tags


async def test_upstream_timeout_reaches_every_waiter_and_frees_the_lease(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    store_settings: dict[str, Any],
    many: httpx.AsyncClient,
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, rtb_timeout_ms=400, **store_settings) as gw:
        replies = await asyncio.gather(
            *(many.post(f"{gw}/rtbs.json?{PING}&sandbox_delay_ms=1200") for _ in range(20))
        )
        assert {r.status_code for r in replies} == {504}
        assert {r.json()["error"] for r in replies} == {"upstream_timeout"}
        assert Counter(r.headers["x-shield"] for r in replies) == {"miss": 1, "coalesced": 19}
        assert upstream_count(app) == 1
        after = await many.post(f"{gw}/rtbs.json?{PING}")
    assert (after.status_code, after.headers["x-shield"]) == (200, "miss")
    assert upstream_count(app) == 2


async def test_scope_key_shields_across_publishers_scope_publisher_does_not(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    store_settings: dict[str, Any],
    client: httpx.AsyncClient,
) -> None:
    url, app = sandbox
    pub_a = f"key={RTB_KEY}&publisher_id=a&caller_number={CALLER}"
    pub_b = f"key={RTB_KEY}&publisher_id=b&caller_number={CALLER}"
    async with make_gateway(rtb_upstream_url=url, **store_settings) as gw:
        await client.post(f"{gw}/rtbs.json?{pub_a}")
        assert (await client.post(f"{gw}/rtbs.json?{pub_b}")).headers["x-shield"] == "hit"
    assert upstream_count(app) == 1
    async with make_gateway(rtb_upstream_url=url, shield_scope="publisher", **store_settings) as gw:
        other = "%2B18558485599"
        await client.post(f"{gw}/rtbs.json?key={RTB_KEY}&publisher_id=a&caller_number={other}")
        b = await client.post(f"{gw}/rtbs.json?key={RTB_KEY}&publisher_id=b&caller_number={other}")
        a = await client.post(f"{gw}/rtbs.json?key={RTB_KEY}&publisher_id=a&caller_number={other}")
    assert (b.headers["x-shield"], a.headers["x-shield"]) == ("miss", "hit")
    assert upstream_count(app) == 3


async def test_confirm_through_the_gateway_updates_the_shielded_copy(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    store_settings: dict[str, Any],
    client: httpx.AsyncClient,
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, **store_settings) as gw:
        first = (await client.post(f"{gw}/rtbs.json?{PING}")).json()
        confirm = await client.put(
            f"{gw}/rtbs/{first['uuid'].upper()}.json", json={"key": RTB_KEY, "status": "confirmed"}
        )
        assert confirm.json()["status"] == "confirmed"
        repeat = await client.post(f"{gw}/rtbs.json?{PING}")
    assert repeat.headers["x-shield"] == "hit"
    assert repeat.json() == {**first, "status": "confirmed", SHIELD: True}
    assert upstream_count(app) == 1


async def test_confirm_answered_no_target_drops_the_shielded_copy(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    store_settings: dict[str, Any],
    client: httpx.AsyncClient,
) -> None:
    url, _ = sandbox
    async with make_gateway(rtb_upstream_url=url, **store_settings) as gw:
        first = (
            await client.post(f"{gw}/rtbs.json?{PING}&sandbox_outcome=confirm-no-target")
        ).json()
        confirm = await client.patch(
            f"{gw}/rtbs/{first['uuid']}.json?key={RTB_KEY}&status=confirmed"
        )
        assert confirm.json() == {"uuid": first["uuid"], "status": "no-target"}
        repeat = await client.post(f"{gw}/rtbs.json?{PING}")
    assert repeat.headers["x-shield"] == "miss"
    assert repeat.json()["uuid"] != first["uuid"]


async def test_redis_keys_hold_no_rtb_key_and_no_phone_number(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    redis_server: RedisServer,
    client: httpx.AsyncClient,
) -> None:
    url, _ = sandbox
    settings = {"redis_url": Secret(redis_server.url), "redis_timeout_ms": 1000}
    async with make_gateway(rtb_upstream_url=url, **settings) as gw:
        first = (await client.post(f"{gw}/rtbs.json?{PING}")).json()
        await client.put(f"{gw}/rtbs/{first['uuid']}.json?key={RTB_KEY}&status=confirmed")
    r = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        keys = [k.decode() async for k in r.scan_iter("*")]
    finally:
        await r.aclose()
    assert len(keys) == 2  # the answer and its uuid index
    for name in keys:
        assert RTB_KEY not in name
        assert "8558485518" not in name
        assert first["uuid"] not in name


async def test_unreachable_redis_still_answers_every_ping(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    dead = Secret(f"redis://127.0.0.1:{free_port()}/0")
    async with make_gateway(rtb_upstream_url=url, redis_url=dead) as gw:
        replies = [await client.post(f"{gw}/rtbs.json?{PING}") for _ in range(6)]
        metrics = (await client.get(f"{gw}/metrics")).text
    assert {r.status_code for r in replies} == {200}
    assert {r.headers["x-shield"] for r in replies} == {"bypass"}
    assert upstream_count(app) == 6
    assert 'gateway_shield_lookups_total{result="error"} 3.0' in metrics
    assert 'gateway_shield_lookups_total{result="bypass"} 3.0' in metrics
