"""A leaseholder answers once its store is on its way to Redis, not once Redis replies.

The store is queued on the Redis connection before the answer is written, so a repeat
that the client sends after reading the answer reaches Redis after the store, on
whichever replica it lands; waiting for the store's reply as well would add one
loopback round trip to every first ping. Here Redis's replies to the leaseholder's
replica are held by a proxy while its requests still go through; the other replica
reaches Redis through a proxy of its own, so both paths to Redis are alike, as they are
between replicas of one deployment.
"""

from __future__ import annotations

import asyncio

from gateway.observe.metrics import Metrics
from gateway.shield.service import StoreShield
from tests.shield.conftest import SEMANTICS_TIMEOUT_S
from tests.shield.test_service import PING, Upstream, _count, deadline_in
from tests.support.redis_server import RedisServer
from tests.support.redis_stores import OwnSeamShieldStore
from tests.support.tcp_proxy import TcpProxy


async def test_the_answer_does_not_wait_for_the_stores_reply(redis_server: RedisServer) -> None:
    metrics = Metrics()
    async with TcpProxy(redis_server.port) as proxy, TcpProxy(redis_server.port) as other:
        behind_proxy = OwnSeamShieldStore.from_url(
            proxy.url,
            timeout_s=SEMANTICS_TIMEOUT_S,
            max_connections=8,
            observe=metrics.observe_redis,
        )
        alike = OwnSeamShieldStore.from_url(
            other.url, timeout_s=SEMANTICS_TIMEOUT_S, max_connections=8
        )
        a, b = StoreShield(behind_proxy), StoreShield(alike)
        await a.start()
        await b.start()
        try:
            upstream = Upstream()
            first = asyncio.create_task(a.answer(PING, deadline_in(10), upstream))
            await upstream.called.wait()  # a holds the lease and is forwarding
            proxy.hold_replies()
            upstream.gate.set()
            answer, result = await first
            assert result == "miss"
            # Answered while the store's reply is still held: no outcome recorded yet.
            assert _count(metrics, "shield_store") == 0
            # The store reached Redis all the same: the other replica's repeat is a hit.
            repeat, again = await b.answer(PING, deadline_in(10), upstream)
            assert again == "hit"
            assert upstream.calls == 1
            assert repeat.body != answer.body  # the repeat carries retreaver_ping_shield
            proxy.release_replies()

            async def recorded() -> bool:
                return _count(metrics, "shield_store") == 1

            while not await recorded():
                await asyncio.sleep(0.01)
        finally:
            proxy.release_replies()
            await a.close()
            await b.close()
