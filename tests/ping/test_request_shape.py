"""Limits and HTTP-level refusals on the ping routes, all answered with JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.conftest import RTB_KEY, MakeGateway

BASE = {"key": RTB_KEY, "publisher_id": "pub", "caller_number": "+18558485518"}


async def _chunks(data: bytes, size: int = 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_body_over_the_limit_is_413_by_length_and_chunked(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    big = b'{"key": "' + b"k" * 5000 + b'"}'
    async with make_gateway(rtb_upstream_url=url, max_body_bytes=4096) as gw:
        by_length = await client.post(
            f"{gw}/rtbs.json", content=big, headers={"content-type": "application/json"}
        )
        chunked = await client.post(
            f"{gw}/rtbs.json", content=_chunks(big), headers={"content-type": "application/json"}
        )
    assert by_length.status_code == 413
    assert by_length.json()["error"] == "payload_too_large"
    assert chunked.status_code == 413
    assert "content-length" not in chunked.request.headers
    assert list(app.state.sandbox.received) == []


async def test_wrong_method_is_405_json_with_allow(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        resp = await client.get(f"{gw}/rtbs.json")
        delete = await client.delete(f"{gw}/rtbs/c6e4ce37-9b49-46af-bd8e-16cb7753499d.json")
    assert resp.status_code == 405
    assert resp.json()["error"] == "method_not_allowed"
    assert "POST" in resp.headers["allow"]
    assert delete.status_code == 405


async def test_unknown_route_is_404_json(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        resp = await client.post(f"{gw}/rtbs.xml")
    assert resp.status_code == 404
    assert resp.json()["error"] == "not_found"


async def test_more_than_100_tags_is_refused_and_100_accepted(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    hundred = {**BASE, **{f"t{i}": str(i) for i in range(100)}}
    too_many = {**BASE, **{f"t{i}": str(i) for i in range(101)}}
    async with make_gateway(rtb_upstream_url=url) as gw:
        ok = await client.post(f"{gw}/rtbs.json", json=hundred)
        refused = await client.post(f"{gw}/rtbs.json", json=too_many)
    assert ok.status_code == 200
    assert refused.status_code == 422
    assert "tags" in refused.json()["fields"]
    assert len(app.state.sandbox.received) == 1


async def test_request_id_is_echoed_or_generated(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        echoed = await client.post(f"{gw}/rtbs.json", json=BASE, headers={"x-request-id": "abc-1"})
        invalid = await client.post(f"{gw}/rtbs.json", json={}, headers={"x-request-id": "abc-2"})
        hostile = await client.get(f"{gw}/healthz", headers={"x-request-id": "a b\tc"})
        generated = await client.get(f"{gw}/healthz")
    assert echoed.headers["x-request-id"] == "abc-1"
    assert invalid.headers["x-request-id"] == "abc-2"
    assert hostile.headers["x-request-id"] != "a b\tc"
    assert len(generated.headers["x-request-id"]) == 32


async def test_health_and_readiness(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        health = await client.get(f"{gw}/healthz")
        ready = await client.get(f"{gw}/readyz")
    assert health.status_code == 200
    assert ready.status_code == 200
