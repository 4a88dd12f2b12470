"""/status is one self-contained page; /stats carries what it draws and says what is wrong."""

from __future__ import annotations

import re
from typing import Any

import httpx

from gateway.app import create_app
from gateway.config import Secret, Settings
from gateway.observe.status import alerts, store_description
from tests.conftest import MakeGateway
from tests.support.redis_server import RedisServer
from tests.support.servers import serve_app


def _route(requests: int = 20, errors: int = 0, bypass: int = 0, up_errors: int = 0) -> dict:
    shield = {"hit": 0, "miss": requests, "coalesced": 0, "error": 0, "bypass": bypass}
    return {
        "requests": requests,
        "error_ratio": errors / requests,
        "shield": shield,
        "upstream": {"requests": requests, "errors": up_errors},
    }


def _snapshot(**routes: dict[str, Any]) -> dict[str, Any]:
    return {
        "draining": False,
        "upstreams": {"rtb": {"breaker_open": False}, "core_api": {"breaker_open": False}},
        "windows": {"10s": {"/" + name: r for name, r in routes.items()}},
    }


def test_no_alerts_when_all_is_well() -> None:
    assert alerts(_snapshot(ping=_route()), redis=True) == []


def test_each_trouble_is_named() -> None:
    snap = _snapshot(
        ping=_route(errors=2, bypass=7, up_errors=3), quiet=_route(requests=4, errors=4)
    )
    snap["upstreams"]["rtb"]["breaker_open"] = True
    snap["draining"] = True
    found = {a["what"]: a for a in alerts(snap, redis=True)}
    assert set(found) == {
        "draining",
        "rtb breaker open",
        "Redis unavailable: shield bypassed",
        "5xx on /ping",
        "upstream errors on /ping",
    }  # /quiet: too few requests to call it a trend
    assert found["Redis unavailable: shield bypassed"]["level"] == "error"
    assert found["Redis unavailable: shield bypassed"]["detail"].startswith("7 pings")
    assert found["5xx on /ping"]["detail"].startswith("10% of 20 requests")


def test_bypass_without_redis_is_not_a_redis_alert() -> None:
    snap = _snapshot(ping=_route(bypass=3))
    assert alerts(snap, redis=False) == []


def test_the_store_is_described_without_its_password() -> None:
    assert store_description(Settings.from_env({})) == "in-process"
    settings = Settings.from_env({}, redis_url=Secret("redis://app:hunter2@redis:6379/0"))
    described = store_description(settings)
    assert "hunter2" not in described
    assert described.startswith("redis://app:")
    assert described.endswith("@redis:6379/0")


async def test_a_query_password_is_masked_on_stats_and_status(sandbox_url: str) -> None:
    """redis-py takes ``?password=`` as it takes ``redis://:pw@``: a real Redis that
    requires it shields with it, and neither /stats nor /status shows it."""
    redis = RedisServer(password="hunter2-query")
    redis.start()
    try:
        url = f"redis://127.0.0.1:{redis.port}/0?password=hunter2-query"
        settings = Settings.from_env({}, rtb_upstream_url=sandbox_url, redis_url=Secret(url))
        async with serve_app(create_app(settings)) as gw, httpx.AsyncClient() as c:
            params = {"key": "k", "publisher_id": "p", "caller_number": "+18558485518"}
            for _ in range(2):
                assert (await c.post(gw + "/rtbs.json", params=params)).status_code == 200
            stats = await c.get(gw + "/stats")
            page = await c.get(gw + "/status")
    finally:
        redis.stop()
    assert stats.json()["shield"]["totals"]["hit"] == 1  # the password did reach Redis
    assert stats.json()["shield"]["store"] == f"redis://127.0.0.1:{redis.port}/0?password=***"
    for r in (stats, page):
        assert r.status_code == 200
        assert "hunter2" not in r.text


async def test_the_page_is_self_contained_html() -> None:
    async with serve_app(create_app(Settings.from_env({}))) as url, httpx.AsyncClient() as c:
        r = await c.get(url + "/status")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    page = r.text
    assert page.startswith("<!doctype html>")
    # Nothing fetched from elsewhere: no src/href attributes, no CSS url(), no imports.
    assert not re.search(r"\s(src|href)=", page)
    assert "url(" not in page
    assert "@import" not in page
    assert 'fetch("stats"' in page


async def test_stats_keeps_its_fields_and_adds_the_state(
    make_gateway: MakeGateway, sandbox_url: str
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw, httpx.AsyncClient() as c:
        params = {"key": "k", "publisher_id": "p", "caller_number": "+18558485518"}
        for _ in range(2):
            assert (await c.post(gw + "/rtbs.json", params=params)).status_code == 200
        stats = (await c.get(gw + "/stats")).json()
    assert {"uptime_s", "windows", "pid"} <= set(stats)
    ping = stats["windows"]["10s"]["/rtbs.json"]
    assert ping["requests"] == 2
    assert ping["shield"]["hit"] == 1
    assert stats["workers"] == 1
    assert sum(stats["series"]["routes"]["/rtbs.json"]["requests"]) == 2
    assert stats["shield"]["totals"]["hit"] == 1
    assert stats["shield"]["store"] == "in-process"
    assert stats["upstreams"]["rtb"]["outcomes"] == {"ok": 1}
    assert stats["upstreams"]["rtb"]["breaker_open"] is False
    assert stats["in_flight"] == 0  # not counting the /stats request itself
    assert stats["alerts"] == []
