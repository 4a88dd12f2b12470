"""One shield answer across replicas when Redis loses what it held, and no orphan lease
when a lookup times out (issue 20, rows 6 and 8).

The replicas are StoreShields in this process, each with its own Redis store (its own
connections and pub/sub subscription) on one real redis-server; their clock is the wall
clock plus an offset the test moves, so the near-cache's trust window passes without
sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest
from redis.asyncio import Redis

from gateway.errors import BadGateway
from gateway.observe.metrics import Metrics
from gateway.shield.entry import SHIELD_FIELD
from gateway.shield.keys import index_digest, ping_digest
from gateway.shield.memory_store import MemoryShieldStore, wall_ms
from gateway.shield.scripts import index_key, shield_keys
from gateway.shield.service import ORPHANS_MAX, StoreShield
from gateway.wire.answer import UpstreamAnswer
from tests.shield.conftest import SEMANTICS_TIMEOUT_S
from tests.shield.test_service import KEY, PING, Upstream, deadline_in, eventually, reservation
from tests.support.redis_server import RedisServer
from tests.support.redis_stores import OwnSeamShieldStore
from tests.support.tcp_proxy import TcpProxy

NEAR_TTL_MS = 1000
UUIDS = [f"4454ffc8-c1b4-4420-81d2-4bbd1a1e13{i:02d}" for i in range(10)]


def upstream(n: int, *, open_gate: bool = True) -> Upstream:
    up = Upstream(UpstreamAnswer(200, reservation(UUIDS[n])))
    if open_gate:
        up.gate.set()
    return up


def uuid_of(answer: UpstreamAnswer) -> str:
    return msgspec.json.decode(answer.body)["uuid"]


class Clock:
    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return wall_ms() + self.offset_ms


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[tuple[Clock, list[StoreShield]]]:
    clock = Clock()
    stores = [
        OwnSeamShieldStore.from_url(
            redis_server.url, timeout_s=SEMANTICS_TIMEOUT_S, max_connections=8
        )
        for _ in range(3)
    ]
    shields = [
        StoreShield(s, near_cache_size=100, near_cache_ttl_ms=NEAR_TTL_MS, clock_ms=clock)
        for s in stores
    ]
    for shield in shields:
        await shield.start()
    try:
        await eventually(lambda: all(s.events_live for s in stores))
        yield clock, shields
    finally:
        for shield in shields:
            await shield.close()


async def answers(shields: list[StoreShield], never: Upstream) -> set[str]:
    return {uuid_of((await s.answer(PING, deadline_in(10), never))[0]) for s in shields}


async def test_flushall_after_near_caching_replicas_agree_within_the_near_cache_ttl(
    replicas: tuple[Clock, list[StoreShield]], redis: Redis
) -> None:
    clock, (a, b, c) = replicas
    never = upstream(9)
    assert (await a.answer(PING, deadline_in(10), upstream(0)))[1] == "miss"
    assert (await b.answer(PING, deadline_in(10), never))[1] == "hit"  # read from Redis
    await redis.flushall()
    # c has no copy: Redis has nothing, so c forwards and stores another reservation.
    fresh, result = await c.answer(PING, deadline_in(10), upstream(1))
    assert (result, uuid_of(fresh)) == ("miss", UUIDS[1])
    # a and b still hold their copies (no round trip): the window the TTL bounds.
    assert await answers([a, b], never) == {UUIDS[0]}
    clock.offset_ms += NEAR_TTL_MS
    # Past the trust window every replica asks Redis again: one answer everywhere.
    assert await answers([a, b, c], never) == {UUIDS[1]}
    assert never.calls == 0


async def test_flushall_mid_lease_the_late_writer_does_not_keep_its_own_answer(
    replicas: tuple[Clock, list[StoreShield]], redis: Redis
) -> None:
    _, (a, b, _c) = replicas
    never = upstream(9)
    slow = upstream(0, open_gate=False)
    first = asyncio.create_task(a.answer(PING, deadline_in(10), slow))
    await slow.called.wait()  # a holds the lease and is forwarding
    await redis.flushall()  # the lease is gone: b leases too
    answer_b, result_b = await b.answer(PING, deadline_in(10), upstream(1))
    assert (result_b, uuid_of(answer_b)) == ("miss", UUIDS[1])
    slow.gate.set()
    answer_a, result_a = await first
    assert (result_a, uuid_of(answer_a)) == ("miss", UUIDS[0])  # its client got its own

    digest = ping_digest("key", PING)

    async def stored() -> bool:
        return await redis.hget(shield_keys(digest)[0], "u") == UUIDS[1].encode()

    await eventually(stored)  # b's answer is the one Redis kept
    # Without waiting out any TTL, a and b now repeat the one Redis kept.
    for _ in range(3):
        assert await answers([a, b], never) == {UUIDS[1]}
    assert never.calls == 0


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[TcpProxy]:
    async with TcpProxy(redis_server.port) as p:
        yield p


async def test_a_lease_granted_to_a_timed_out_lookup_is_settled_not_left_to_lapse(
    redis_server: RedisServer, proxy: TcpProxy, redis: Redis
) -> None:
    """Redis grants the lease but its reply arrives after the lookup gave up: that ping is
    forwarded unshielded, then its answer is stored under the token Redis leased to, so
    the caller's next ping (here on another replica) is a hit, not a 5 s wait for the
    orphan lease to lapse followed by a second reservation."""
    slow_store = OwnSeamShieldStore.from_url(proxy.url, timeout_s=0.1, max_connections=4)
    direct = OwnSeamShieldStore.from_url(
        redis_server.url, timeout_s=SEMANTICS_TIMEOUT_S, max_connections=4
    )
    a = StoreShield(slow_store, lease_ms=5000)
    b = StoreShield(direct, lease_ms=5000)
    await a.start()
    await b.start()
    digest = ping_digest("key", PING)
    answer_key, lease_key = shield_keys(digest)[:2]
    try:
        proxy.hold_replies()  # requests reach Redis; its replies are held back
        first, result = await a.answer(PING, deadline_in(10), upstream(0))
        assert (result, uuid_of(first)) == ("error", UUIDS[0])

        async def settled() -> bool:
            return not await redis.exists(lease_key) and bool(await redis.exists(answer_key))

        await eventually(settled, within=4.0)  # well inside the 5 s orphan lease
        second = upstream(1)
        answer, result = await b.answer(PING, deadline_in(10), second)
        assert (result, uuid_of(answer)) == ("hit", UUIDS[0])
        assert second.calls == 0
    finally:
        proxy.release_replies()
        await a.close()
        await b.close()


async def test_a_failed_forward_after_a_timed_out_lookup_releases_its_lease(
    redis_server: RedisServer, proxy: TcpProxy, redis: Redis
) -> None:
    a = StoreShield(
        OwnSeamShieldStore.from_url(proxy.url, timeout_s=0.1, max_connections=4), lease_ms=5000
    )
    await a.start()
    lease_key = shield_keys(ping_digest("key", PING))[1]
    try:
        proxy.hold_replies()
        failing = Upstream(BadGateway("rtb", "connection reset"))
        failing.gate.set()
        with pytest.raises(BadGateway):
            await a.answer(PING, deadline_in(10), failing)

        async def lease_gone() -> bool:
            return not await redis.exists(lease_key)

        await eventually(lease_gone, within=4.0)
    finally:
        proxy.release_replies()
        await a.close()


def confirmation(n: int, status: str = "confirmed") -> UpstreamAnswer:
    body = msgspec.json.decode(reservation(UUIDS[n]))
    return UpstreamAnswer(200, msgspec.json.encode({**body, "status": status}))


async def statuses(shields: list[StoreShield], never: Upstream) -> set[str]:
    return {
        msgspec.json.decode((await s.answer(PING, deadline_in(10), never))[0].body)["status"]
        for s in shields
    }


async def test_confirm_after_redis_lost_the_uuid_index_still_ends_reserved_repeats(
    replicas: tuple[Clock, list[StoreShield]], redis: Redis
) -> None:
    """An allkeys-lru Redis evicts the cold uuid index before the answer it points at: the
    confirmation is announced instead, and the first repeat anywhere rewrites the stored
    answer, so no replica keeps saying ``reserved`` (issue 20, row 7)."""
    _, (a, b, c) = replicas
    never = upstream(9)
    await a.answer(PING, deadline_in(10), upstream(0))
    assert await statuses([a, b, c], never) == {"reserved"}  # b and c near-cache it
    await redis.delete(index_key(index_digest(KEY, UUIDS[0])))
    await a.confirmed(KEY, UUIDS[0], confirmation(0))

    async def everyone_says_confirmed() -> bool:
        return await statuses([a, b, c], never) == {"confirmed"}

    await eventually(everyone_says_confirmed, within=3.0)
    answer_key = shield_keys(ping_digest("key", PING))[0]
    stored = msgspec.json.decode(await redis.hget(answer_key, "b"))
    assert (stored["status"], stored["uuid"], stored[SHIELD_FIELD]) == ("confirmed", UUIDS[0], True)
    assert never.calls == 0


async def test_no_target_confirm_after_the_index_was_lost_forwards_the_next_ping(
    replicas: tuple[Clock, list[StoreShield]], redis: Redis
) -> None:
    _, (a, b, _c) = replicas
    await a.answer(PING, deadline_in(10), upstream(0))
    assert (await b.answer(PING, deadline_in(10), upstream(9)))[1] == "hit"
    await redis.delete(index_key(index_digest(KEY, UUIDS[0])))
    await a.confirmed(KEY, UUIDS[0], UpstreamAnswer(200, b'{"status":"no-target"}'))
    again = upstream(1)

    async def forwarded_again() -> bool:
        answer, result = await b.answer(PING, deadline_in(10), again)
        return result == "miss" and uuid_of(answer) == UUIDS[1]

    await eventually(forwarded_again, within=3.0)
    assert again.calls == 1


async def test_a_confirmation_with_another_key_does_not_touch_the_answer(
    replicas: tuple[Clock, list[StoreShield]], redis: Redis
) -> None:
    _, (a, b, _c) = replicas
    never = upstream(9)
    await a.answer(PING, deadline_in(10), upstream(0))
    other_key = "0fc40342-f0a0-4e8f-bf09-b3887eedcb4a"
    await a.confirmed(other_key, UUIDS[0], confirmation(0))  # finds no index for that key
    assert await statuses([a, b], never) == {"reserved"}
    # The real confirmation, its index lost, then the other key's again: not shadowed.
    await redis.delete(index_key(index_digest(KEY, UUIDS[0])))
    await a.confirmed(KEY, UUIDS[0], confirmation(0))
    await a.confirmed(other_key, UUIDS[0], UpstreamAnswer(200, b'{"status":"no-target"}'))

    async def confirmed_everywhere() -> bool:
        return await statuses([a, b], never) == {"confirmed"}

    await eventually(confirmed_everywhere, within=3.0)
    assert never.calls == 0


async def test_announced_confirmations_are_bounded_and_counted() -> None:
    metrics = Metrics()
    shield = StoreShield(MemoryShieldStore(10), metrics=metrics)
    for i in range(ORPHANS_MAX + 5):
        shield.orphaned(f"index{i}", f"uuid{i}", None)
    assert len(shield._orphans) == ORPHANS_MAX
    assert len(shield._orphan_uuids) == ORPHANS_MAX
    assert "uuid0" not in shield._orphan_uuids  # the oldest went first
    dropped = metrics.registry.get_sample_value("gateway_shield_orphan_confirms_dropped_total")
    assert dropped == 5
