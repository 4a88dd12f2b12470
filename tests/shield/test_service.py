"""StoreShield over real stores: relay of failures, dead holders, deadlines, breaker,
near-cache invalidation. The upstream here is a callable, so each test controls exactly
when and how the "upstream" answers; the stores are real (Redis on a free port)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import msgspec
import pytest
from redis.asyncio import Redis

from gateway.errors import BadGateway, GatewayError
from gateway.observe.metrics import Metrics
from gateway.ping.requests import Ping
from gateway.shield.keys import ping_digest
from gateway.shield.memory_store import MemoryShieldStore
from gateway.shield.scripts import shield_keys
from gateway.shield.service import StoreShield
from gateway.wire.answer import UpstreamAnswer
from gateway.wire.redis import Breaker
from tests.shield.conftest import SEMANTICS_TIMEOUT_S
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.redis_stores import OwnSeamShieldStore

KEY = "7fc40342-f0a0-4e8f-bf09-b3887eedcb4a"
PING = Ping(KEY, "pub", "+18558485518")


def reservation(uuid: str = "4454ffc8-c1b4-4420-81d2-4bbd1a1e132e", ttl: float = 60) -> bytes:
    expires = datetime.fromtimestamp(time.time() + ttl, UTC).isoformat()
    return msgspec.json.encode({"uuid": uuid, "status": "reserved", "expires_at": expires})


class Upstream:
    """A forward callable: counts calls, answers when its gate opens."""

    def __init__(self, answer: UpstreamAnswer | GatewayError | None = None) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.called = asyncio.Event()
        self.answer = answer or UpstreamAnswer(200, reservation())

    async def __call__(self) -> UpstreamAnswer:
        self.calls += 1
        self.called.set()
        await self.gate.wait()
        if isinstance(self.answer, GatewayError):
            raise self.answer
        return self.answer


def deadline_in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 10.0) -> None:
    """Poll a condition that has no event to wait on (another process, Redis pub/sub)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


class Pair:
    """Two shields that must coalesce: one shield twice, or two replicas on one Redis."""

    def __init__(self, a: StoreShield, b: StoreShield, redis_url: str) -> None:
        self.a, self.b, self.redis_url = a, b, redis_url

    async def waiting(self) -> None:
        """Return once b's requests wait for a's lease (so none can arrive too late)."""
        if self.a is self.b:
            await asyncio.sleep(0)  # followers join the in-process flight when first run
            return
        # b's lead request found the lease held: it raised the waiters flag in Redis.
        flag = shield_keys(ping_digest("key", PING))[3]
        client = Redis.from_url(self.redis_url)
        try:

            async def flagged() -> bool:
                return bool(await client.exists(flag))

            await eventually(flagged)
        finally:
            await client.aclose()


@pytest.fixture(params=["one-process", "two-replicas"])
async def pair(request: pytest.FixtureRequest, redis_server: RedisServer) -> AsyncIterator[Pair]:
    shields = []
    for _ in range(1 if request.param == "one-process" else 2):
        store = OwnSeamShieldStore.from_url(
            redis_server.url, timeout_s=SEMANTICS_TIMEOUT_S, max_connections=32
        )
        shields.append(StoreShield(store, near_cache_size=1000, lease_ms=300))
    for shield in shields:
        await shield.start()
    try:
        yield Pair(shields[0], shields[-1], redis_server.url)
    finally:
        for shield in shields:
            await shield.close()


async def test_waiters_of_a_failed_lease_get_the_same_error(pair: Pair) -> None:
    a, b = pair.a, pair.b
    upstream = Upstream(BadGateway("rtb", "connection refused or unreachable"))
    leader = asyncio.create_task(a.answer(PING, deadline_in(10), upstream))
    await upstream.called.wait()
    waiters = [asyncio.create_task(b.answer(PING, deadline_in(10), upstream)) for _ in range(20)]
    await pair.waiting()
    upstream.gate.set()
    with pytest.raises(GatewayError) as raised:
        await leader
    assert raised.value.headers == {"x-shield": "miss"}
    results = await asyncio.gather(*waiters)
    assert upstream.calls == 1
    for answer, result in results:
        assert result == "coalesced"
        assert answer.status == 502
        assert answer.body == raised.value.body()
    # Nothing was stored: the next ping asks the upstream again.
    again = Upstream()
    again.gate.set()
    answer, result = await b.answer(PING, deadline_in(10), again)
    assert (result, again.calls, answer.status) == ("miss", 1, 200)


async def test_unstorable_answer_is_relayed_unchanged(pair: Pair) -> None:
    a, b = pair.a, pair.b
    upstream = Upstream(UpstreamAnswer(200, b'{"status":"no-target"}'))
    leader = asyncio.create_task(a.answer(PING, deadline_in(10), upstream))
    await upstream.called.wait()
    waiter = asyncio.create_task(b.answer(PING, deadline_in(10), upstream))
    await pair.waiting()
    upstream.gate.set()
    assert (await leader)[0].body == b'{"status":"no-target"}'
    answer, result = await waiter
    assert (answer.body, result, upstream.calls) == (b'{"status":"no-target"}', "coalesced", 1)


async def test_cancelled_holder_is_replaced_by_one_waiter(pair: Pair) -> None:
    a, b = pair.a, pair.b
    first = Upstream()
    leader = asyncio.create_task(a.answer(PING, deadline_in(10), first))
    await first.called.wait()
    second = Upstream(UpstreamAnswer(200, reservation("0000ffc8-c1b4-4420-81d2-4bbd1a1e132e")))
    second.gate.set()
    waiters = [asyncio.create_task(b.answer(PING, deadline_in(10), second)) for _ in range(10)]
    await pair.waiting()
    leader.cancel()
    results = await asyncio.gather(*waiters)
    assert first.calls == 1
    assert second.calls == 1
    assert sorted(r for _, r in results) == ["coalesced"] * 9 + ["miss"]
    assert len({msgspec.json.decode(a.body)["uuid"] for a, _ in results}) == 1


async def test_no_waiter_outlives_its_own_deadline(pair: Pair) -> None:
    a, b = pair.a, pair.b
    upstream = Upstream()
    leader = asyncio.create_task(a.answer(PING, deadline_in(30), upstream))
    await upstream.called.wait()
    loop = asyncio.get_running_loop()
    deadline = deadline_in(0.3)
    with pytest.raises(GatewayError) as raised:
        await b.answer(PING, deadline, upstream)
    assert raised.value.status == 504
    assert raised.value.headers == {"x-shield": "coalesced"}
    assert loop.time() >= deadline
    upstream.gate.set()
    await leader
    assert upstream.calls == 1


async def test_near_cache_answers_repeats_and_confirm_invalidates_every_replica(
    redis_server: RedisServer,
) -> None:
    metrics = Metrics()
    stores = [
        OwnSeamShieldStore.from_url(
            redis_server.url,
            timeout_s=SEMANTICS_TIMEOUT_S,
            max_connections=8,
            observe=metrics.observe_redis if i == 1 else None,
        )
        for i in range(2)
    ]
    a, b = (StoreShield(s, near_cache_size=100) for s in stores)
    await a.start()
    await b.start()

    try:
        await eventually(lambda: stores[0].events_live and stores[1].events_live)
        upstream = Upstream()
        upstream.gate.set()
        first, result = await a.answer(PING, deadline_in(10), upstream)
        assert result == "miss"
        uuid = msgspec.json.decode(first.body)["uuid"]
        assert (await b.answer(PING, deadline_in(10), upstream))[1] == "hit"  # via Redis
        assert _count(metrics, "shield_acquire") == 1
        answer, result = await b.answer(PING, deadline_in(10), upstream)
        assert result == "hit"
        assert _count(metrics, "shield_acquire") == 1  # no round trip: the near-cache
        assert msgspec.json.decode(answer.body)["status"] == "reserved"
        assert upstream.calls == 1

        confirmed = {**msgspec.json.decode(first.body), "status": "confirmed"}
        await a.confirmed(KEY, uuid, UpstreamAnswer(200, msgspec.json.encode(confirmed)))

        async def b_says_confirmed() -> bool:
            answer, _ = await b.answer(PING, deadline_in(10), upstream)
            return msgspec.json.decode(answer.body)["status"] == "confirmed"

        await eventually(b_says_confirmed)
        assert upstream.calls == 1
    finally:
        await a.close()
        await b.close()


def _count(metrics: Metrics, command: str) -> float:
    for family in metrics.redis_duration.collect():
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels["command"] == command:
                return sample.value
    return 0.0


async def test_unreachable_redis_fails_open_then_bypasses() -> None:
    metrics = Metrics()
    store = OwnSeamShieldStore.from_url(
        f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.05, max_connections=4
    )
    shield = StoreShield(store, breaker=Breaker(3, 60.0), metrics=metrics)
    await shield.start()
    try:
        upstream = Upstream()
        upstream.gate.set()
        results = [
            (await shield.answer(Ping(KEY, "p", f"+1855848551{i}"), deadline_in(10), upstream))[1]
            for i in range(6)
        ]
    finally:
        await shield.close()
    assert results == ["error"] * 3 + ["bypass"] * 3
    assert upstream.calls == 6
    assert _lookups(metrics) == {"error": 3, "bypass": 3}


async def test_in_process_store_coalesces_and_relays_like_redis() -> None:
    shield = StoreShield(MemoryShieldStore(100))
    upstream = Upstream(BadGateway("rtb", "connection reset"))
    tasks = [asyncio.create_task(shield.answer(PING, deadline_in(10), upstream)) for _ in range(50)]
    await upstream.called.wait()
    upstream.gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert upstream.calls == 1
    assert sum(isinstance(o, GatewayError) for o in outcomes) == 1
    relayed = [o for o in outcomes if not isinstance(o, BaseException)]
    assert {(a.status, r) for a, r in relayed} == {(502, "coalesced")}


def _lookups(metrics: Metrics) -> dict[str, float]:
    out = {}
    for family in metrics.shield_lookups.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.value:
                out[sample.labels["result"]] = sample.value
    return out
