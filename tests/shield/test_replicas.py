"""Three gateway processes on one Redis: one upstream request per caller, across replicas,
and a leaseholder that dies mid-request (SIGKILL) is replaced by exactly one waiter."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from typing import Any

import aiohttp
import pytest

from tests.conftest import RTB_KEY
from tests.shield.replicas import gateway_processes
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow

SHIELD = "retreaver_ping_shield"


def ping_url(base: str, caller: str, extra: str = "") -> str:
    return f"{base}/rtbs.json?key={RTB_KEY}&publisher_id=pub&caller_number=%2B{caller}{extra}"


def upstream_callers(app: Any) -> list[str]:
    return [r["fields"]["caller_number"] for r in app.state.sandbox.received]


async def post(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any], str]:
    async with session.post(url) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers.get("x-shield", "")


async def test_three_replicas_100_concurrent_pings_each_one_upstream_request(
    redis_server: RedisServer, sandbox: tuple[str, Any]
) -> None:
    url, app = sandbox
    async with (
        gateway_processes(3, redis_server.url, url) as gws,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=400)) as session,
    ):
        calls = [
            post(session, ping_url(gw.url, "18558485518", "&sandbox_delay_ms=300"))
            for gw in gws
            for _ in range(100)
        ]
        replies = await asyncio.gather(*calls)
    assert upstream_callers(app) == ["+18558485518"]
    assert {status for status, _, _ in replies} == {200}
    assert len({body["uuid"] for _, body, _ in replies}) == 1
    assert sum(1 for _, body, _ in replies if body.get(SHIELD)) == 299
    shields = Counter(shield for _, _, shield in replies)
    assert shields["miss"] == 1
    assert shields["coalesced"] + shields["hit"] == 299


async def test_thousand_callers_five_duplicates_each_exactly_thousand_upstream_requests(
    redis_server: RedisServer, sandbox: tuple[str, Any]
) -> None:
    url, app = sandbox
    callers = [f"1855848{i:04d}" for i in range(1000)]
    async with (
        gateway_processes(3, redis_server.url, url) as gws,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=150)) as session,
    ):
        jobs = [(c, gws[(i + d) % 3].url) for i, c in enumerate(callers) for d in range(5)]
        random.Random(7).shuffle(jobs)
        replies = await asyncio.gather(*(post(session, ping_url(gw, c)) for c, gw in jobs))
    received = Counter(upstream_callers(app))
    assert len(received) == 1000
    assert set(received.values()) == {1}
    assert {status for status, _, _ in replies} == {200}
    uuids: dict[str, set[str]] = {}
    for (caller, _), (_, body, _) in zip(jobs, replies, strict=True):
        uuids.setdefault(caller, set()).add(body["uuid"])
    assert all(len(u) == 1 for u in uuids.values())
    assert sum(1 for _, body, _ in replies if body.get(SHIELD)) == 4000


async def test_killed_leaseholder_is_replaced_by_one_waiter_and_no_waiter_fails(
    redis_server: RedisServer, sandbox: tuple[str, Any]
) -> None:
    url, app = sandbox
    received = app.state.sandbox.received
    slow = "&sandbox_delay_ms=1500"
    async with (
        # A 1 s lease (the default): a waiter takes over about a second after the kill.
        gateway_processes(3, redis_server.url, url, GATEWAY_SHIELD_LEASE_MS="1000") as (
            holder,
            b,
            c,
        ),
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session,
    ):
        doomed = asyncio.create_task(post(session, ping_url(holder.url, "18558485518", slow)))
        while not received:  # the holder's request reached the upstream: it holds the lease
            await asyncio.sleep(0.01)
        waiters = [
            asyncio.create_task(post(session, ping_url(gw.url, "18558485518", slow)))
            for gw in (b, c)
            for _ in range(25)
        ]
        await asyncio.sleep(0.2)  # the waiters are in, waiting on the holder's lease
        holder.signal(signal.SIGKILL)
        replies = await asyncio.gather(*waiters)
        with pytest.raises(aiohttp.ClientError):
            await doomed
    assert len(received) <= 2
    assert {status for status, _, _ in replies} == {200}  # no 5xx, no waiter timed out
    assert len({body["uuid"] for _, body, _ in replies}) == 1
    shields = Counter(shield for _, _, shield in replies)
    assert shields["miss"] <= 1
    assert shields["miss"] + shields["coalesced"] + shields["hit"] == 50


async def test_flushall_mid_lease_two_replicas_converge_on_the_answer_redis_kept(
    redis_server: RedisServer, sandbox: tuple[str, Any]
) -> None:
    """Redis loses the lease while replica a forwards: b leases and forwards too, and
    Redis keeps b's answer. a's client gets a's own answer once; after that both
    replicas repeat the one Redis kept (a does not near-cache the answer Redis refused)."""
    url, app = sandbox
    received = app.state.sandbox.received
    async with (
        gateway_processes(2, redis_server.url, url) as (a, b),
        aiohttp.ClientSession() as session,
    ):
        slow = asyncio.create_task(
            post(session, ping_url(a.url, "18558485518", "&sandbox_delay_ms=1000"))
        )
        while not received:  # a holds the lease and its request reached the upstream
            await asyncio.sleep(0.01)
        await asyncio.to_thread(redis_server.flushall)
        _, kept, shield_b = await post(session, ping_url(b.url, "18558485518"))
        _, own, shield_a = await slow
        repeats = [
            await post(session, ping_url(gw.url, "18558485518")) for _ in range(5) for gw in (a, b)
        ]
    assert (shield_a, shield_b) == ("miss", "miss")
    assert own["uuid"] != kept["uuid"]
    assert {body["uuid"] for _, body, _ in repeats} == {kept["uuid"]}
    assert len(received) == 2
