"""Anything outside the allow-list is the gateway's own 404 and never reaches the upstream;
write verbs are 405 unless writes are turned on; bad report queries are 400."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from gateway.sandbox.api import CoreApiState
from tests.coreapi.conftest import AUTH, ServeGateway, raw_request

UUID = "efe3c236-2781-4837-bcf7-e7c6ece7e25e"

# Request targets sent byte for byte (no client library normalises them first).
HOSTILE: list[bytes] = [
    b"/admin.json",
    b"/calls",
    b"/calls.html",
    b"/calls.json/",
    b"/CALLS.json",
    b"/calls.json;jsessionid=1",
    b"/calls.json%3Fapi_key=x",
    b"/api/v5/calls.json",
    b"/api/v2/calls.xml",  # v2 is JSON only
    b"/api/v1/reports.xml",  # so are reports
    b"/static_caller_numbers/1234/numbers.json",
    b"/calls/../companies.json",
    b"/calls/./companies.json",
    b"/calls/%2e%2e/companies.json",
    b"/calls/%2E%2E%2Fcompanies.json",
    b"/calls/%2e%2e.json",
    b"/affiliates/afid/%2e%2e.json",
    b"/affiliates/afid/..json",
    b"/affiliates/afid/...json",
    b"/affiliates/afid/%41BC.json",
    b"/affiliates/afid/a%2fb.json",
    b"/affiliates/afid/a%00.json",
    b"/affiliates/afid/..%5c..%5cwin.ini.json",
    b"/affiliates/afid/a\\b.json",
    b"/\\evil.example/calls.json",
    b"//evil.example/calls.json",
    b"//evil.example:80/calls.json",
    b"///evil.example/calls.json",
    b"/calls.json@evil.example",
    b"/@evil.example/calls.json",
    b"/affiliates/afid/user@evil.example.json",
    b"/http://evil.example/calls.json",
    b"/https:%2F%2Fevil.example/calls.json",
    b"/calls/" + UUID.encode() + b"%00.json",
    b"/calls/" + UUID.encode() + b"x.json",
    b"/suppressed_numbers/13216065590.json",  # not E.164: no "+"
    b"/suppressed_numbers/+1-321-606-5590.json",
    b"/suppressed_numbers/%252B13214819612.json",  # double-encoded "+"
    b"http://evil.example/admin.json",  # absolute-form target, unknown path
    b"*",
]


async def test_hostile_paths_are_404_and_never_forwarded(
    serve_gateway: ServeGateway, core: CoreApiState
) -> None:
    async with serve_gateway() as (url, _):
        for target in HOSTILE:
            query = b"?" + AUTH.encode() if target != b"*" else b""
            status, headers, body = await raw_request(url, target + query)
            assert status == 404, (target, status, body)
            assert headers["content-type"] == "application/json", target
            assert msgspec.json.decode(body)["error"] == "not_found", target
    assert list(core.received) == []


async def test_an_absolute_form_target_only_ever_reaches_the_configured_upstream(
    serve_gateway: ServeGateway, sandbox: tuple[str, Any], core: CoreApiState
) -> None:
    """RFC 9112 makes servers accept absolute-form; its authority never picks the upstream."""
    async with serve_gateway() as (url, _):
        status, _, _ = await raw_request(url, b"http://evil.example/company.json?" + AUTH.encode())
    assert status == 200
    assert [r["raw_path"] for r in core.received] == ["/company.json"]


async def test_write_verbs_are_405_json_unless_turned_on(
    serve_gateway: ServeGateway, core: CoreApiState, client: httpx.AsyncClient
) -> None:
    async with serve_gateway() as (url, _):
        post = await client.post(f"{url}/affiliates.json?{AUTH}", json={"affiliate": {}})
        reset = await client.post(f"{url}/targets/6588/reset_cap.json?{AUTH}")
        delete = await client.delete(f"{url}/affiliates/101.json?{AUTH}")
        patch = await client.patch(f"{url}/affiliates/101.json?{AUTH}")
        options = await client.options(f"{url}/calls.json?{AUTH}")
    for resp in (post, reset, delete, patch, options):
        assert resp.status_code == 405
        assert resp.headers["content-type"] == "application/json"
        assert resp.json()["error"] == "method_not_allowed"
    assert "GATEWAY_CORE_API_ALLOW_WRITES" in post.json()["message"]
    assert post.headers["allow"] == "GET, HEAD"
    assert reset.headers["allow"] == ""
    assert list(core.received) == []


async def test_writes_when_turned_on_are_forwarded_once_each_and_never_cached(
    serve_gateway: ServeGateway, core: CoreApiState, client: httpx.AsyncClient
) -> None:
    body = {"affiliate": {"afid": "9001", "first_name": "Nancy"}}
    async with serve_gateway(core_api_allow_writes=True) as (url, _):
        created = await client.post(f"{url}/affiliates.json?{AUTH}", json=body)
        await client.post(f"{url}/affiliates.json?{AUTH}", json=body)
        found = await client.get(f"{url}/affiliates/afid/9001.json?{AUTH}")
        removed = await client.delete(f"{url}/affiliates/afid/9001.json?{AUTH}")
    assert created.status_code in (200, 201), created.text
    assert created.json()["affiliate"]["afid"] == "9001"
    assert "x-cache" not in created.headers
    assert found.status_code == 200
    assert removed.status_code in (200, 204)
    seen = [(r["method"], r["raw_path"]) for r in core.received]
    assert seen == [
        ("POST", "/affiliates.json"),
        ("POST", "/affiliates.json"),
        ("GET", "/affiliates/afid/9001.json"),
        ("DELETE", "/affiliates/afid/9001.json"),
    ]


async def test_bad_report_queries_are_400_and_never_forwarded(
    serve_gateway: ServeGateway, core: CoreApiState, client: httpx.AsyncClient
) -> None:
    base = f"/api/v1/reports.json?{AUTH}"
    async with serve_gateway() as (url, _):
        missing = await client.get(url + base)
        wrong = await client.get(
            url + base + "&domain=calls&facet=zip&created_at_start=2024-11-05"
            "&created_at_end=2024-11-01"
        )
        too_long = await client.get(
            url + base + "&domain=calls&facet=daily&created_at_start=2020-01-01"
            "&created_at_end=2024-01-01"
        )
    assert missing.status_code == wrong.status_code == too_long.status_code == 400
    assert set(missing.json()["fields"]) == {
        "domain",
        "facet",
        "created_at_start",
        "created_at_end",
    }
    assert set(wrong.json()["fields"]) == {"facet", "created_at_end"}
    assert set(too_long.json()["fields"]) == {"created_at_end"}
    assert "woofwoofwoof" not in missing.text
    assert list(core.received) == []


async def test_malformed_or_huge_queries_are_refused_and_never_forwarded(
    serve_gateway: ServeGateway, core: CoreApiState
) -> None:
    async with serve_gateway() as (url, _):
        raw_byte, _, _ = await raw_request(url, b"/calls.json?" + AUTH.encode() + b"&caller=\xff")
        huge, _, body = await raw_request(
            url, b"/calls.json?" + AUTH.encode() + b"&x=" + b"a" * 9000
        )
    assert raw_byte == 400  # refused by the HTTP parser already; the handler checks again
    assert huge == 414
    assert msgspec.json.decode(body)["error"] == "uri_too_long"
    assert list(core.received) == []
