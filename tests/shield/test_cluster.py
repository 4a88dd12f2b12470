"""``redis+cluster://``: the shield over a real three-node Redis Cluster.

Hash-tagged keys put an answer, its lease and relay in one slot (the Lua scripts would be
refused otherwise); the uuid index lives elsewhere and is written by its own command;
pub/sub announcements reach every replica whichever node they subscribed to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.config import Secret
from tests.conftest import RTB_KEY, MakeGateway
from tests.shield.redis_cluster import RedisClusterServers

pytestmark = pytest.mark.slow

SHIELD = "retreaver_ping_shield"


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers()
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


def ping(caller: str) -> str:
    return f"/rtbs.json?key={RTB_KEY}&publisher_id=pub&caller_number=%2B{caller}"


async def test_cluster_shields_concurrent_pings_repeats_and_confirms(
    cluster: RedisClusterServers,
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
) -> None:
    url, app = sandbox
    settings = {"redis_url": Secret(cluster.url), "redis_timeout_ms": 1000}
    limits = httpx.Limits(max_connections=200)
    callers = [f"1855848{i:04d}" for i in range(20)]  # spread over the cluster's slots
    async with (
        make_gateway(rtb_upstream_url=url, **settings) as a,
        make_gateway(rtb_upstream_url=url, **settings) as b,
        httpx.AsyncClient(timeout=30, limits=limits) as client,
    ):
        replies = await asyncio.gather(
            *(
                client.post(gw + ping(c) + "&sandbox_delay_ms=200")
                for c in callers
                for gw in (a, b, a, b, a)
            )
        )
        assert {r.status_code for r in replies} == {200}
        assert len(app.state.sandbox.received) == 20
        assert sum(1 for r in replies if r.json().get(SHIELD)) == 80
        # Confirm through one replica; the other's repeat must say "confirmed".
        for caller in callers[:5]:
            first = (await client.post(a + ping(caller))).json()
            await client.put(f"{a}/rtbs/{first['uuid']}.json?key={RTB_KEY}&status=confirmed")
            for _ in range(500):  # b's near-cache is invalidated over pub/sub
                repeat = (await client.post(b + ping(caller))).json()
                if repeat["status"] == "confirmed":
                    break
                await asyncio.sleep(0.01)
            assert repeat == {**first, "status": "confirmed"}
        metrics = (await client.get(f"{b}/metrics")).text
    assert len(app.state.sandbox.received) == 20 + 5  # the five confirmations
    assert 'gateway_shield_lookups_total{result="error"} 0.0' in metrics
