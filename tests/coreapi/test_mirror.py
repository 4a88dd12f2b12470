"""Every allow-listed read route, through the gateway and straight to the sandbox:
the same status, bytes and content type, with ``Link`` re-pointed at the gateway."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.coreapi.route_table import READ_ROUTES
from gateway.sandbox.api import CoreApiState
from gateway.sandbox.api.seeding import seed
from tests.coreapi.conftest import AUTH, ServeGateway

_company = seed().by_company[1]
SAMPLES = {
    "uuid": _company.calls[0].uuid,
    "afid": _company.affiliates[0]["afid"],
    "tid": next(t["tid"] for t in _company.targets if t.get("tid")),
    "cid": _company.campaigns[0]["cid"],
    "number": _company.suppressed_numbers[0]["number"],
}
IDS = {
    "/affiliates/{id}": _company.affiliates[0]["id"],
    "/api/v1/affiliates/{id}": _company.affiliates[0]["id"],
    "/targets/{id}": _company.targets[0]["id"],
    "/campaigns/{id}": _company.campaigns[0]["id"],
    "/numbers/{id}": _company.numbers[0]["id"],
    "/number_pools/{id}": _company.number_pools[0]["id"],
    "/companies/{id}": 1,
    "/contacts/{id}": _company.contacts[0]["id"],
    "/target_groups/{id}": _company.target_groups[0]["id"],
}
CONTACT_NUMBER = _company.contacts[0]["contact_numbers"][0]["number"]
EXTRA_QUERY = {
    "/calls": "&page=2",  # 60 calls: first, prev, last and next links
    "/api/v1/calls": "&page=2",
    "/api/v2/calls": "&page=2&sort_by=created_at&order=asc",
    "/api/v3/calls": "&page=2&call_flow_events=true",
    "/api/v4/calls": "&page=3&sort_by=created_at&order=asc",
    "/numbers": "&page=2",  # 30 numbers: first and prev links
    "/api/v1/reports": "&domain=calls&facet=daily&created_at_start=2024-11-01"
    "&created_at_end=2024-11-06T00:00:00%2B00:00",
}


def _concrete(template: str) -> str:
    path = template
    if "{id}" in path:
        path = path.replace("{id}", str(IDS[template]))
    if template.startswith("/contact_numbers/"):
        path = path.replace("{number}", CONTACT_NUMBER)
    for name, value in SAMPLES.items():
        path = path.replace("{" + name + "}", value)
    return path


# Caller-list routes take a postback key and a Bearer secret: tests/coreapi/test_caller_lists.py.
API_KEY_ROUTES = [r for r in READ_ROUTES if not r.auth]
CASES = [
    f"{_concrete(r.template)}.{fmt}?{AUTH}{EXTRA_QUERY.get(r.template, '')}"
    for r in API_KEY_ROUTES
    for fmt in r.formats
]


@pytest.fixture
async def gateway(serve_gateway: ServeGateway) -> Any:
    async with serve_gateway() as (url, _app):
        yield url


async def test_every_read_route_is_mirrored(
    gateway: str,
    sandbox: tuple[str, Any],
    core: CoreApiState,
    client: httpx.AsyncClient,
) -> None:
    """One gateway and one sandbox for the whole table (servers are the slow part)."""
    assert len(CASES) == sum(len(r.formats) for r in API_KEY_ROUTES) > 60
    sandbox_url = sandbox[0]
    links = 0
    for target in CASES:
        direct = await client.get(sandbox_url + target)
        core.received.clear()
        through = await client.get(gateway + target)

        assert direct.status_code == 200, (target, direct.text)
        assert through.status_code == direct.status_code, target
        assert through.content == direct.content, target
        assert through.headers["content-type"] == direct.headers["content-type"], target
        assert through.headers["x-cache"] == "miss", target
        if "link" in direct.headers:
            links += 1
            # Only the origin changes: the query, api_key included, stays byte for byte.
            expected = direct.headers["link"].replace(sandbox_url, gateway)
            assert through.headers["link"] == expected, target
            assert sandbox_url not in through.headers["link"], target
        else:
            assert "link" not in through.headers, target
        # The upstream saw the same path (phone "+" kept) and the query byte for byte.
        (seen,) = list(core.received)
        path, _, query = target.partition("?")
        assert (seen["method"], seen["raw_path"], seen["query"]) == ("GET", path, query), target
    # calls (unversioned and /api/v1) and numbers in two formats, v2, v3, v4 calls in JSON
    assert links == 3 * 2 + 3


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/calls.json", 401),
        ("/calls.xml?api_key=nope", 401),
        ("/calls.json?api_key=meowmeowmeow&company_id=1", 403),
        (f"/affiliates/999999.json?{AUTH}", 404),
        (f"/affiliates/999999.xml?{AUTH}", 404),
        (f"/suppressed_numbers/+19999999999.json?{AUTH}", 404),
        (f"/calls.json?{AUTH}&page=zero", 400),
    ],
)
async def test_upstream_errors_come_back_untouched_and_uncached(
    target: str,
    status: int,
    gateway: str,
    sandbox: tuple[str, Any],
    core: CoreApiState,
    client: httpx.AsyncClient,
) -> None:
    direct = await client.get(sandbox[0] + target)
    core.received.clear()
    first = await client.get(gateway + target)
    second = await client.get(gateway + target)
    assert direct.status_code == status
    for through in (first, second):
        assert through.status_code == status
        assert through.content == direct.content
        assert through.headers["content-type"] == direct.headers["content-type"]
    assert len(core.received) == 2  # errors are never served from the cache


async def test_a_phone_number_keeps_its_plus_however_it_was_written(
    gateway: str, core: CoreApiState, client: httpx.AsyncClient
) -> None:
    number = SAMPLES["number"]
    escaped = number.replace("+", "%2B")
    plain = await client.get(f"{gateway}/suppressed_numbers/{number}.json?{AUTH}")
    encoded = await client.get(f"{gateway}/suppressed_numbers/{escaped}.json?api_key=woofwoofwoof")
    assert plain.status_code == encoded.status_code == 200
    assert plain.json()["suppressed_number"]["number"] == number
    assert [r["raw_path"] for r in core.received] == [f"/suppressed_numbers/{number}.json"] * 2


async def test_link_follows_forwarded_headers_only_when_trusted(
    serve_gateway: ServeGateway, client: httpx.AsyncClient
) -> None:
    target = f"/calls.json?{AUTH}&page=2"
    # (uvicorn itself applies X-Forwarded-Proto from 127.0.0.1 peers, so the untrusted
    # case is shown with the host alone.)
    async with serve_gateway() as (url, _):
        untrusted = await client.get(url + target, headers={"X-Forwarded-Host": "public.example"})
    async with serve_gateway(trust_forwarded_headers=True) as (trusted_url, _):
        trusted = await client.get(
            trusted_url + target,
            headers={"X-Forwarded-Host": "public.example", "X-Forwarded-Proto": "https"},
        )
    untrusted_links = _link_urls(untrusted.headers["link"])
    trusted_links = _link_urls(trusted.headers["link"])
    assert len(untrusted_links) == len(trusted_links) == 4
    assert all(link.startswith(f"{url}/calls.json?") for link in untrusted_links)
    assert all(link.startswith("https://public.example/calls.json?") for link in trusted_links)


def _link_urls(value: str) -> list[str]:
    return [part.split(">")[0].lstrip(" <") for part in value.split(",")]


async def test_head_is_answered_like_get_without_a_body(
    gateway: str, core: CoreApiState, client: httpx.AsyncClient
) -> None:
    resp = await client.head(f"{gateway}/company.json?{AUTH}")
    assert resp.status_code == 200
    assert resp.content == b""
    assert resp.headers["content-type"].startswith("application/json")
    assert [r["method"] for r in core.received] == ["GET"]
