"""Coalescing, caching per credentials, the concurrency cap and 429 handling, against
the sandbox over real sockets (and a real redis-server for the shared cache)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.config import Secret
from gateway.observe.metrics import Metrics
from gateway.sandbox.api import CoreApiState
from tests.coreapi.conftest import AUTH, ServeGateway
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

COMPANY = f"/company.json?{AUTH}"


def _gauge(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


async def _until_in_flight(metrics: Metrics, count: int) -> None:
    """Wait (bounded) until the gateway is serving ``count`` requests at once."""
    async with asyncio.timeout(30):
        while _gauge(metrics, "gateway_http_requests_in_flight") < count:
            await asyncio.sleep(0.005)


@pytest.fixture
async def wide() -> Any:
    async with httpx.AsyncClient(
        timeout=60, limits=httpx.Limits(max_connections=300, max_keepalive_connections=300)
    ) as c:
        yield c


async def test_50_identical_concurrent_lookups_cost_one_upstream_request(
    serve_gateway: ServeGateway, core: CoreApiState, wide: httpx.AsyncClient
) -> None:
    # No cache at all, so every saving below is coalescing.
    async with serve_gateway(lookup_cache_ttl_s=0) as (url, metrics):
        core.hold()
        tasks = [asyncio.create_task(wide.get(url + COMPANY)) for _ in range(50)]
        await core.wait_in_flight(1)
        await _until_in_flight(metrics, 50)
        core.release()
        answers = await asyncio.gather(*tasks)
    assert len(core.received) == 1
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    results = sorted(a.headers["x-cache"] for a in answers)
    assert results == ["coalesced"] * 49 + ["miss"]


async def test_identical_lookups_with_the_cache_on_cost_one_upstream_request(
    serve_gateway: ServeGateway, core: CoreApiState, wide: httpx.AsyncClient
) -> None:
    async with serve_gateway() as (url, _app):
        answers = await asyncio.gather(*(wide.get(url + COMPANY) for _ in range(50)))
        later = await wide.get(url + COMPANY)
        metrics = (await wide.get(url + "/metrics")).text
    assert len(core.received) == 1
    assert {a.status_code for a in answers} == {200}
    assert later.headers["x-cache"] == "hit"
    assert later.content == answers[0].content
    assert 'gateway_lookup_cache_lookups_total{result="hit"}' in metrics


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_another_api_key_never_gets_a_cached_answer(
    store: str,
    serve_gateway: ServeGateway,
    core: CoreApiState,
    client: httpx.AsyncClient,
    request: pytest.FixtureRequest,
) -> None:
    settings: dict[str, Any] = {}
    if store == "redis":
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        settings["redis_url"] = Secret(redis_server.url)
    path = "/company.json?company_id=1&api_key="
    async with serve_gateway(**settings) as (url, _):
        first = await client.get(url + path + "woofwoofwoof")
        repeat = await client.get(url + path + "woofwoofwoof")
        other = await client.get(url + path + "barkbarkbark")  # same company, other key
        foreign = await client.get(url + path + "meowmeowmeow")  # key of another company
        missing = await client.get(url + "/company.json?company_id=1")
    assert [first.headers["x-cache"], repeat.headers["x-cache"]] == ["miss", "hit"]
    assert other.status_code == 200
    assert other.headers["x-cache"] == "miss"
    assert foreign.status_code == 403
    assert missing.status_code == 401
    assert [r["query"].rsplit("=", 1)[-1] for r in core.received] == [
        "woofwoofwoof",
        "barkbarkbark",
        "meowmeowmeow",
        "1",
    ]


async def test_concurrent_lookups_with_different_keys_are_not_coalesced(
    serve_gateway: ServeGateway, core: CoreApiState, client: httpx.AsyncClient
) -> None:
    async with serve_gateway() as (url, _app):
        core.hold()
        woof = asyncio.create_task(client.get(f"{url}/company.json?api_key=woofwoofwoof"))
        bark = asyncio.create_task(client.get(f"{url}/company.json?api_key=barkbarkbark"))
        await core.wait_in_flight(2)
        core.release()
        answers = await asyncio.gather(woof, bark)
    assert [a.headers["x-cache"] for a in answers] == ["miss", "miss"]
    assert len(core.received) == 2


async def test_the_concurrency_cap_holds_under_200_different_lookups(
    serve_gateway: ServeGateway,
    sandbox: tuple[str, Any],
    core: CoreApiState,
    wide: httpx.AsyncClient,
) -> None:
    # The sandbox itself would take 1,000 at once; the gateway must send at most 4.
    await wide.post(sandbox[0] + "/_sandbox/config", json={"core_api_max_concurrency": 1000})
    async with serve_gateway(core_api_max_concurrency=4, core_api_timeout_ms=60_000) as (
        url,
        metrics,
    ):
        core.hold()
        tasks = [
            asyncio.create_task(wide.get(f"{url}/calls.json?{AUTH}&sub_id=s{i}"))
            for i in range(200)
        ]
        await core.wait_in_flight(4)
        await _until_in_flight(metrics, 200)  # everyone is queued at the gateway
        core.release()
        answers = await asyncio.gather(*tasks)
        metrics = (await wide.get(url + "/metrics")).text
    assert {a.status_code for a in answers} == {200}
    assert len(core.received) == 200
    assert core.max_in_flight == 4
    assert core.rejected == 0
    assert (
        'gateway_upstream_request_duration_seconds_count{outcome="ok",upstream="core_api"} 200.0'
        in (metrics)
    )


async def test_a_429_storm_is_ridden_out(
    serve_gateway: ServeGateway,
    sandbox: tuple[str, Any],
    core: CoreApiState,
    client: httpx.AsyncClient,
) -> None:
    # Two full waves of 429s (Retry-After: 1) for four lookups in flight at once.
    await client.post(
        sandbox[0] + "/_sandbox/config", json={"core_api_429": 8, "core_api_retry_after_s": 1}
    )
    async with serve_gateway(core_api_max_concurrency=4) as (url, _):
        answers = await asyncio.gather(
            *(client.get(f"{url}/calls.json?{AUTH}&page={page}") for page in (1, 2, 3, 4))
        )
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert core.rejected == 8
    assert [r["status"] for r in core.received].count(429) == 8
    assert len(core.received) == 12


async def test_a_429_longer_than_the_retry_budget_is_passed_on(
    serve_gateway: ServeGateway,
    sandbox: tuple[str, Any],
    core: CoreApiState,
    client: httpx.AsyncClient,
) -> None:
    await client.post(
        sandbox[0] + "/_sandbox/config", json={"core_api_429": 1, "core_api_retry_after_s": 30}
    )
    async with serve_gateway(core_api_max_retry_wait_s=5) as (url, _):
        throttled = await client.get(url + COMPANY)
        during = await client.get(url + "/calls.json?" + AUTH)
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "30"
    assert throttled.json()["error"]  # the sandbox's own 429 body, untouched
    # While the upstream asked for quiet, nothing is sent: the gateway answers 429 itself.
    assert during.status_code == 429
    assert during.json()["error"] == "rate_limited"
    assert 1 <= int(during.headers["retry-after"]) <= 30
    assert len(core.received) == 1


async def test_no_request_reaches_the_upstream_before_retry_after(
    serve_gateway: ServeGateway,
    sandbox: tuple[str, Any],
    core: CoreApiState,
    client: httpx.AsyncClient,
) -> None:
    await client.post(
        sandbox[0] + "/_sandbox/config", json={"core_api_429": 1, "core_api_retry_after_s": 1}
    )
    async with serve_gateway(core_api_max_retry_wait_s=5) as (url, _):
        first = await client.get(f"{url}/calls.json?{AUTH}&page=1")
        assert first.status_code == 200
        # The 429 was the first request; the retry came only after Retry-After.
        throttled_at = core.received[0]["at"]
        assert core.received[0]["status"] == 429
        assert core.received[1]["at"] - throttled_at >= 1.0
    assert len(core.received) == 2


async def test_lookups_arriving_during_the_quiet_wait_it_out(
    serve_gateway: ServeGateway,
    sandbox: tuple[str, Any],
    core: CoreApiState,
    client: httpx.AsyncClient,
) -> None:
    await client.post(
        sandbox[0] + "/_sandbox/config", json={"core_api_429": 1, "core_api_retry_after_s": 1}
    )
    async with serve_gateway(core_api_max_retry_wait_s=5) as (url, _):
        first = asyncio.create_task(client.get(f"{url}/calls.json?{AUTH}&page=1"))
        while not core.received:
            await asyncio.sleep(0.01)
        others = await asyncio.gather(
            *(client.get(f"{url}/calls.json?{AUTH}&page={p}") for p in (2, 3))
        )
        assert (await first).status_code == 200
    assert [o.status_code for o in others] == [200, 200]
    throttled_at = core.received[0]["at"]
    later = [r["at"] - throttled_at for r in list(core.received)[1:]]
    assert len(later) == 3
    assert min(later) >= 1.0


async def test_upstream_timeout_is_504_json(
    serve_gateway: ServeGateway,
    sandbox: tuple[str, Any],
    client: httpx.AsyncClient,
) -> None:
    await client.post(sandbox[0] + "/_sandbox/config", json={"core_api_delay_ms": 1000})
    async with serve_gateway(core_api_timeout_ms=100) as (url, _):
        resp = await client.get(url + COMPANY)
    assert resp.status_code == 504
    assert resp.json()["error"] == "upstream_timeout"
    assert "woofwoofwoof" not in resp.text


async def test_unreachable_upstream_is_502_json(
    serve_gateway: ServeGateway, client: httpx.AsyncClient
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with serve_gateway(core_api_url=dead) as (url, _):
        resp = await client.get(url + COMPANY)
    assert resp.status_code == 502
    assert resp.json()["error"] == "bad_gateway"
    assert "woofwoofwoof" not in resp.text
    assert dead not in resp.text


async def test_upstream_5xx_is_passed_through_and_not_cached(
    serve_gateway: ServeGateway,
    sandbox: tuple[str, Any],
    core: CoreApiState,
    client: httpx.AsyncClient,
) -> None:
    await client.post(sandbox[0] + "/_sandbox/config", json={"core_api_status": 503})
    direct = await client.get(sandbox[0] + COMPANY)
    core.received.clear()
    async with serve_gateway() as (url, _):
        answers = [await client.get(url + COMPANY) for _ in range(2)]
    for resp in answers:
        assert resp.status_code == 503
        assert resp.content == direct.content
    assert len(core.received) == 2


async def test_replicas_share_the_redis_cache_and_survive_its_death(
    serve_gateway: ServeGateway,
    core: CoreApiState,
    client: httpx.AsyncClient,
    redis_server: RedisServer,
) -> None:
    async with (
        serve_gateway(redis_url=Secret(redis_server.url)) as (one, _),
        serve_gateway(redis_url=Secret(redis_server.url)) as (two, _),
    ):
        first = await client.get(one + COMPANY)
        second = await client.get(two + COMPANY)
        redis_server.kill()
        down = await client.get(two + f"/company.json?{AUTH}&x=1")
        skipped = await client.get(two + f"/company.json?{AUTH}&x=2")
    assert [first.headers["x-cache"], second.headers["x-cache"]] == ["miss", "hit"]
    assert second.content == first.content
    assert down.status_code == skipped.status_code == 200
    assert down.headers["x-cache"] == "error"
    # Skipped for a second after the failure (a stall past that would try Redis again).
    assert skipped.headers["x-cache"] in ("bypass", "error")
    assert len(core.received) == 3


async def test_route_labels_are_templates_never_paths(
    serve_gateway: ServeGateway, client: httpx.AsyncClient
) -> None:
    uuid = "efe3c236-2781-4837-bcf7-e7c6ece7e25e"
    async with serve_gateway() as (url, _):
        await client.get(f"{url}/calls/{uuid}.json?{AUTH}")
        await client.get(f"{url}/suppressed_numbers/+13214819612.xml?{AUTH}")
        await client.get(f"{url}/no/such/thing.json?{AUTH}")
        metrics = (await client.get(url + "/metrics")).text
    assert 'route="/calls/{uuid}.json"' in metrics
    assert 'route="/suppressed_numbers/{number}.xml"' in metrics
    assert 'route="unmatched"' in metrics
    for secret in (uuid, "13214819612", "woofwoofwoof", "no/such"):
        assert secret not in metrics
