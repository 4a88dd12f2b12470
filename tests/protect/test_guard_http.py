"""Allow-list, rate limits, breaker, shedding and the query limit over real sockets.

Each case checks the status and JSON body the publisher sees, what reached the sandbox
upstream (nothing, for a refusal) and the refusal counter on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from gateway.config import Secret
from tests.conftest import RTB_KEY, MakeGateway
from tests.support.redis_server import RedisServer

OTHER_KEY = "0b3b8cb1-4f55-4a56-8a43-1a6f3c1e7d21"
CALLERS = [f"%2B1855848{n:04d}" for n in range(5518, 5618)]


def ping(key: str = RTB_KEY, publisher: str = "pub", caller: int = 0, extra: str = "") -> str:
    return f"/rtbs.json?key={key}&publisher_id={publisher}&caller_number={CALLERS[caller]}{extra}"


async def refusals(client: httpx.AsyncClient, gw: str, reason: str) -> float:
    text = (await client.get(f"{gw}/metrics")).text
    match = re.search(rf'gateway_protect_refusals_total{{reason="{reason}"}} ([0-9.e+]+)', text)
    assert match is not None, f"no refusal counter for {reason}"
    return float(match.group(1))


async def test_unknown_key_is_403_and_never_forwarded(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    allowed = Secret(f"{RTB_KEY}, another-key")
    async with make_gateway(rtb_upstream_url=url, rtb_allowed_keys=allowed) as gw:
        refused = await client.post(gw + ping(OTHER_KEY))
        confirm = await client.put(
            f"{gw}/rtbs/c6e4ce37-9b49-46af-bd8e-16cb7753499d.json?key={OTHER_KEY}&status=confirmed"
        )
        assert len(app.state.sandbox.received) == 0
        accepted = await client.post(gw + ping(RTB_KEY))
        counted = await refusals(client, gw, "forbidden_key")
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert OTHER_KEY not in refused.text
    assert confirm.status_code == 403
    assert accepted.status_code == 200
    assert [r["fields"]["key"] for r in app.state.sandbox.received] == [RTB_KEY]
    assert counted == 2


async def test_keys_file_is_read(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    url, app = sandbox
    keys = tmp_path / "keys"
    keys.write_text(f"# campaigns\n{RTB_KEY}\n")
    async with make_gateway(rtb_upstream_url=url, rtb_allowed_keys_file=str(keys)) as gw:
        ok = await client.post(gw + ping(RTB_KEY))
        refused = await client.post(gw + ping(OTHER_KEY))
    assert (ok.status_code, refused.status_code) == (200, 403)
    assert len(app.state.sandbox.received) == 1


async def test_publisher_over_its_limit_gets_429_with_retry_after(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    async with make_gateway(
        rtb_upstream_url=url, rate_limit_per_publisher="3/m, vip=off, small=1/h"
    ) as gw:
        statuses = [(await client.post(gw + ping(caller=i))).status_code for i in range(3)]
        limited = await client.post(gw + ping(caller=3))
        other = await client.post(gw + ping(publisher="another", caller=4))
        vip = [
            (await client.post(gw + ping(publisher="vip", caller=5 + i))).status_code
            for i in range(10)
        ]
        small = [
            (await client.post(gw + ping(publisher="small", caller=20 + i))).status_code
            for i in range(2)
        ]
        counted = await refusals(client, gw, "rate_limited")
    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 20  # one ping per 20 s
    assert other.status_code == 200
    assert vip == [200] * 10
    assert small == [200, 429]
    forwarded = [r["fields"]["caller_number"] for r in app.state.sandbox.received]
    assert "+18558485521" not in forwarded  # caller 3, the refused one
    assert len(forwarded) == 3 + 1 + 10 + 1
    assert counted == 2


async def test_key_limit_holds_across_publishers(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    async with make_gateway(rtb_upstream_url=url, rate_limit_per_key="2/h") as gw:
        statuses = [
            (await client.post(gw + ping(publisher=f"p{i}", caller=i))).status_code
            for i in range(3)
        ]
        other_key = await client.post(gw + ping(key=OTHER_KEY, caller=9))
    assert statuses == [200, 200, 429]
    assert other_key.status_code == 200


async def test_limits_are_shared_through_redis(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    client: httpx.AsyncClient,
    redis_server: RedisServer,
) -> None:
    url, _ = sandbox
    common = dict(
        rtb_upstream_url=url,
        redis_url=Secret(redis_server.url),
        rate_limit_per_publisher="4/h",
        redis_timeout_ms=1000,  # generous: other tests load the machine
    )
    async with make_gateway(**common) as a, make_gateway(**common) as b:
        statuses = [
            (await client.post((a, b)[i % 2] + ping(caller=i))).status_code for i in range(6)
        ]
        fallbacks = (await client.get(f"{a}/metrics")).text
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert "gateway_rate_limit_fallbacks_total 0.0" in fallbacks


async def test_redis_down_falls_back_to_per_replica_limits(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    client: httpx.AsyncClient,
    redis_server: RedisServer,
) -> None:
    url, _ = sandbox
    async with make_gateway(
        rtb_upstream_url=url,
        redis_url=Secret(redis_server.url),
        rate_limit_per_publisher="2/h",
        redis_timeout_ms=200,
    ) as gw:
        redis_server.kill()
        statuses = [(await client.post(gw + ping(caller=i))).status_code for i in range(4)]
        text = (await client.get(f"{gw}/metrics")).text
    fallbacks = re.search(r"gateway_rate_limit_fallbacks_total ([0-9.e+]+)", text)
    assert fallbacks is not None
    assert float(fallbacks.group(1)) == 4  # every check answered in process, none failed
    assert statuses == [200, 200, 429, 429]


async def test_breaker_opens_on_a_5xx_storm_and_closes_after_a_probe(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    state = app.state.sandbox
    async with make_gateway(rtb_upstream_url=url, breaker_failures=5, breaker_open_s=0.2) as gw:
        state.config = {"status": 503}
        answers = [await client.post(gw + ping(caller=i)) for i in range(5)]
        assert [a.json() for a in answers] == [{"error": "sandbox error 503"}] * 5
        opened_at = asyncio.get_running_loop().time()
        fast = [await client.post(gw + ping(caller=10 + i)) for i in range(20)]
        open_for = asyncio.get_running_loop().time() - opened_at
        probes = len(state.received) - 5
        state.config = {}
        recovered = None
        for i in range(200):  # probes go out every 0.2 s; one of them closes the breaker
            recovered = await client.post(gw + ping(caller=40 + i % 50))
            if recovered.status_code == 200:
                break
            await asyncio.sleep(0.02)
        counted = await refusals(client, gw, "breaker_open")
    # While open, only one probe per open_s reaches the upstream; the rest are refused.
    assert probes <= open_for / 0.2 + 1
    refused = [a for a in fast if a.json().get("error") == "upstream_unavailable"]
    assert len(refused) == 20 - probes
    assert len(refused) >= 10
    assert all(a.status_code == 503 and a.headers["retry-after"] == "1" for a in refused)
    assert recovered is not None
    assert recovered.status_code == 200
    assert counted >= len(refused)


async def test_breaker_ignores_4xx(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, breaker_failures=3) as gw:
        app.state.sandbox.config = {"status": 404}
        answers = [(await client.post(gw + ping(caller=i))).status_code for i in range(10)]
    assert answers == [404] * 10
    assert len(app.state.sandbox.received) == 10


async def test_excess_requests_are_shed_fast_but_ops_routes_answer(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    state = app.state.sandbox
    async with make_gateway(rtb_upstream_url=url, max_in_flight=3) as gw:
        slow = [
            asyncio.create_task(client.post(gw + ping(caller=i, extra="&sandbox_delay_ms=1500")))
            for i in range(3)
        ]
        while len(state.received) < 3:
            state.arrived.clear()
            await state.arrived.wait()
        shed = await client.post(gw + ping(caller=9))
        health = await client.get(f"{gw}/healthz")
        metrics = await client.get(f"{gw}/metrics")
        done = await asyncio.gather(*slow)
        after = await client.post(gw + ping(caller=10))
        counted = await refusals(client, gw, "overloaded")
    assert shed.status_code == 503
    assert shed.json()["error"] == "overloaded"
    assert shed.headers["retry-after"] == "1"
    assert (health.status_code, metrics.status_code) == (200, 200)
    assert [d.status_code for d in done] == [200, 200, 200]
    assert after.status_code == 200
    assert len(state.received) == 4
    assert counted == 1


async def test_forwards_past_the_pool_size_are_refused_not_queued(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    state = app.state.sandbox
    async with make_gateway(rtb_upstream_url=url, rtb_max_connections=2) as gw:
        slow = [
            asyncio.create_task(client.post(gw + ping(caller=i, extra="&sandbox_delay_ms=3000")))
            for i in range(2)
        ]
        while len(state.received) < 2:
            state.arrived.clear()
            await state.arrived.wait()
        refused = await client.post(gw + ping(caller=9))
        await asyncio.gather(*slow)
    assert refused.status_code == 503
    assert refused.json()["error"] == "overloaded"
    assert len(state.received) == 2


async def test_long_query_string_is_414_and_not_forwarded(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, max_query_bytes=1024) as gw:
        resp = await client.post(gw + ping(extra="&pad=" + "x" * 1000))
        ok = await client.post(gw + ping(extra="&pad=" + "x" * 100))
    assert resp.status_code == 414
    assert resp.json()["error"] == "uri_too_long"
    assert ok.status_code == 200
    assert len(app.state.sandbox.received) == 1
