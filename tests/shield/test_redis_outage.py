"""Redis dies (SIGKILL), is blackholed (a proxy that stops forwarding) or freezes (SIGSTOP)
while pings flow: every ping is still answered 200, promptly; the error and bypass
counters move; the shield resumes by itself once Redis is back."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.config import Secret
from tests.conftest import RTB_KEY, MakeGateway
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

# Each ping must finish within this, outage or not; without short Redis timeouts a
# blackholed Redis holds a ping for the OS's TCP timeout (minutes with redis-py defaults).
PING_BOUND_S = 2.0


def ping(caller: str) -> str:
    return f"/rtbs.json?key={RTB_KEY}&publisher_id=pub&caller_number=%2B{caller}"


async def lookups(client: httpx.AsyncClient, gw: str) -> dict[str, float]:
    text = (await client.get(f"{gw}/metrics")).text
    found = re.findall(r'gateway_shield_lookups_total\{result="(\w+)"\} ([0-9.e+]+)', text)
    return {name: float(value) for name, value in found}


async def until(check: Any, within: float = 15.0) -> None:
    """Poll a condition that has no event (another process's state, a counter)."""
    end = time.monotonic() + within
    while not await check():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class Shielding:
    """Asks: does a fresh caller's repeat come from the shield right now?"""

    def __init__(self, client: httpx.AsyncClient, gw: str) -> None:
        self.client, self.gw, self.n = client, gw, 0

    async def __call__(self) -> bool:
        self.n += 1
        url = self.gw + ping(f"1855849{self.n:04d}")
        await self.client.post(url)
        return (await self.client.post(url)).headers["x-shield"] == "hit"


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[TcpProxy]:
    async with TcpProxy(redis_server.port) as p:
        yield p


@pytest.mark.parametrize("outage", ["sigkill", "blackhole", "sigstop"])
async def test_pings_survive_a_redis_outage_and_the_shield_resumes(
    outage: str,
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    redis_server: RedisServer,
    proxy: TcpProxy,
) -> None:
    url, _ = sandbox
    redis_url = proxy.url if outage == "blackhole" else redis_server.url
    replies: list[httpx.Response] = []
    stop = asyncio.Event()
    async with (
        make_gateway(rtb_upstream_url=url, redis_url=Secret(redis_url)) as gw,
        httpx.AsyncClient(timeout=PING_BOUND_S) as client,
    ):
        shielding = Shielding(client, gw)
        await until(shielding)

        async def flow(worker: int) -> None:
            n = 0
            while not stop.is_set():
                replies.append(await client.post(gw + ping(f"1855848{worker}{n % 5:03d}")))
                n += 1

        flows = [asyncio.create_task(flow(w)) for w in range(4)]
        try:

            async def flowing(count: int) -> bool:
                return len(replies) >= count

            await until(lambda: flowing(40))
            before = await lookups(client, gw)
            if outage == "sigkill":
                redis_server.kill()
            elif outage == "blackhole":
                proxy.blackhole()
            else:
                redis_server.pause()
            try:

                async def failing_and_bypassing() -> bool:
                    now = await lookups(client, gw)
                    return now["error"] > before["error"] and now["bypass"] > before["bypass"]

                await until(failing_and_bypassing)
                during = len(replies)
                await until(lambda: flowing(during + 40))  # pings keep flowing while it is out
            finally:
                if outage == "sigkill":
                    await asyncio.to_thread(redis_server.start)
                elif outage == "blackhole":
                    proxy.restore()
                else:
                    redis_server.resume()
            await until(shielding)  # resumes by itself, no restart of the gateway
        finally:
            stop.set()
            results = await asyncio.gather(*flows, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, failures  # a ping slower than PING_BOUND_S raises here
    assert {r.status_code for r in replies} == {200}
    assert {"miss", "bypass"} <= {r.headers["x-shield"] for r in replies}
