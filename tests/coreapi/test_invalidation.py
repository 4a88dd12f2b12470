"""Writes clear reads: a write through the gateway makes every replica sharing the Redis
cache stop serving the cached reads of what it changed, so a GET after a DELETE is never
a cached 200 (two real gateways, one real redis-server, the sandbox as the Core API)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gateway.config import Secret
from gateway.sandbox.api.seeding import seed
from tests.coreapi.conftest import AUTH, ServeGateway
from tests.support.redis_server import RedisServer

_company = seed().by_company[1]
TARGET = next(t for t in _company.targets if t.get("tid"))
GROUP = _company.target_groups[0]


async def _two_replicas(
    serve_gateway: ServeGateway, redis_server: RedisServer, **settings: Any
) -> Any:
    shared = {"redis_url": Secret(redis_server.url), "core_api_allow_writes": True, **settings}
    return serve_gateway(**shared), serve_gateway(**shared)


async def test_a_delete_on_one_replica_is_seen_at_once_by_the_other(
    serve_gateway: ServeGateway, redis_server: RedisServer, client: httpx.AsyncClient
) -> None:
    reads = [
        f"/targets/{TARGET['id']}.json",
        f"/targets/{TARGET['id']}.xml",
        f"/targets/tid/{TARGET['tid']}.json",
        "/targets.json",
        "/targets.xml",
        f"/target_groups/{GROUP['id']}.json",  # lists its targets
    ]
    one, two = await _two_replicas(serve_gateway, redis_server, lookup_cache_ttl_s=60)
    async with one as (a, _), two as (b, _):
        for path in reads:
            assert (await client.get(f"{a}{path}?{AUTH}")).headers["x-cache"] == "miss"
            assert (await client.get(f"{b}{path}?{AUTH}")).headers["x-cache"] == "hit"
        deleted = await client.delete(f"{a}/targets/{TARGET['id']}.json?{AUTH}")
        after = {path: await client.get(f"{b}{path}?{AUTH}") for path in reads}
        mine = await client.get(f"{a}/targets/{TARGET['id']}.json?{AUTH}")
    assert deleted.status_code == 204
    for path in reads[:3]:
        assert after[path].status_code == 404, path
    for path in reads[3:]:
        assert after[path].status_code == 200, path
        assert after[path].headers["x-cache"] == "miss", path
        assert str(TARGET["id"]) not in after["/targets.json"].text
    assert mine.status_code == 404


async def test_no_stale_200_after_the_writes_answer_while_reads_race_it(
    serve_gateway: ServeGateway, redis_server: RedisServer, client: httpx.AsyncClient
) -> None:
    """Reads hammer replica B while replica A deletes: every read that starts after the
    DELETE's answer arrived gets 404, even though reads in flight may store a 200."""
    path = f"/targets/{TARGET['id']}.json?{AUTH}"
    one, two = await _two_replicas(serve_gateway, redis_server, lookup_cache_ttl_s=60)
    async with one as (a, _), two as (b, _):
        assert (await client.get(b + path)).status_code == 200
        done = asyncio.Event()
        reading = [asyncio.Event() for _ in range(4)]
        after_answer: list[int] = []

        async def reader(first_read: asyncio.Event) -> None:
            async with httpx.AsyncClient(timeout=10) as own:
                while True:
                    started_after = done.is_set()
                    status = (await own.get(b + path)).status_code
                    first_read.set()
                    if started_after:
                        after_answer.append(status)
                        if len(after_answer) >= 20:
                            return

        readers = [asyncio.create_task(reader(event)) for event in reading]
        for event in reading:  # every reader is going before the write
            await event.wait()
        deleted = await client.delete(a + path)
        done.set()
        await asyncio.gather(*readers)
    assert deleted.status_code == 204
    assert after_answer
    assert set(after_answer) == {404}


async def test_a_refused_write_clears_nothing_and_a_create_shows_in_the_list(
    serve_gateway: ServeGateway, redis_server: RedisServer, client: httpx.AsyncClient
) -> None:
    one, two = await _two_replicas(serve_gateway, redis_server, lookup_cache_ttl_s=60)
    async with one as (a, _), two as (b, _):
        await client.get(f"{b}/affiliates.json?{AUTH}")
        refused = await client.post(f"{a}/affiliates.json?{AUTH}", json={"affiliate": {}})
        still = await client.get(f"{b}/affiliates.json?{AUTH}")
        created = await client.post(
            f"{a}/api/v1/affiliates.json?{AUTH}", json={"affiliate": {"afid": "new-7"}}
        )
        listed = await client.get(f"{b}/affiliates.json?{AUTH}")
    assert refused.status_code in (400, 422)
    assert still.headers["x-cache"] == "hit"
    assert created.status_code == 201
    assert listed.headers["x-cache"] == "miss"
    assert "new-7" in listed.text
