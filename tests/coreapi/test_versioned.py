"""The 2026-05 reference's routes through the gateway, against the sandbox: versioned v1
calls and affiliates, v3 and v4 calls, the ``state`` facet; and pagination ``Link``
headers that work as given (only the origin changes, ``api_key`` stays)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.sandbox.api.seeding import seed
from tests.coreapi.conftest import AUTH, ServeGateway

_company = seed().by_company[1]
UUID = _company.calls[0].uuid
AFID = _company.affiliates[0]["afid"]
REPORT = "domain=calls&created_at_start=2024-11-01&created_at_end=2024-11-30"

NEW_ROUTES = [
    f"/api/v1/calls.json?{AUTH}&page=2",
    f"/api/v1/calls.xml?{AUTH}",
    f"/api/v1/calls/{UUID}.json?{AUTH}",
    f"/api/v1/calls/{UUID}.xml?{AUTH}",
    f"/api/v3/calls.json?{AUTH}&page=2",
    f"/api/v3/calls/{UUID}.json?{AUTH}",
    f"/api/v4/calls.json?{AUTH}&sort_by=created_at&order=asc",
    f"/api/v4/calls/{UUID}.json?{AUTH}&call_flow_events=true",
    f"/api/v1/affiliates.json?{AUTH}",
    f"/api/v1/affiliates.xml?{AUTH}",
    f"/api/v1/affiliates/afid/{AFID}.xml?{AUTH}",
    f"/api/v1/reports.json?{AUTH}&{REPORT}&facet=state",
    f"/api/v1/reports.json?{AUTH}&{REPORT}&facet=buyer",
]

_LINK = re.compile(r'<([^>]*)>;\s*rel="([a-z]+)"')


def _links(value: str) -> dict[str, str]:
    return {rel: url for url, rel in _LINK.findall(value)}


@pytest.fixture
async def gateway(serve_gateway: ServeGateway) -> Any:
    async with serve_gateway() as (url, _app):
        yield url


async def test_each_new_route_answers_as_the_upstream_does(
    gateway: str, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    for target in NEW_ROUTES:
        direct = await client.get(sandbox[0] + target)
        through = await client.get(gateway + target)
        assert direct.status_code == 200, (target, direct.text)
        assert through.status_code == 200, target
        assert through.content == direct.content, target
        assert through.headers["content-type"] == direct.headers["content-type"], target
        if "link" in direct.headers:
            # Only the origin changes; the query, api_key included, stays as written.
            assert through.headers["link"] == direct.headers["link"].replace(sandbox[0], gateway)
            for url in _links(through.headers["link"]).values():
                assert "api_key=woofwoofwoof" in url
        else:
            assert "link" not in through.headers, target


async def test_v3_and_v4_shapes(gateway: str, client: httpx.AsyncClient) -> None:
    v2 = (await client.get(f"{gateway}/api/v2/calls/{UUID}.json?{AUTH}")).json()["call"]
    v3 = (await client.get(f"{gateway}/api/v3/calls/{UUID}.json?{AUTH}")).json()["call"]
    v4 = (await client.get(f"{gateway}/api/v4/calls/{UUID}.json?{AUTH}")).json()["call"]
    assert isinstance(v2["number"], str)
    assert "campaign_id" in v2
    assert v3["number"]["number"] == v2["number"]
    assert v3["number"]["name"]
    assert "campaign_id" not in v4
    assert v4["campaign"] == {"id": str(v2["campaign_id"]), "name": v2["campaign_name"]}
    flow = await client.get(f"{gateway}/api/v2/calls/{UUID}.json?{AUTH}&call_flow_events=true")
    assert flow.json()["call"]["call_flow_events"][0]["call_flow_event"]["event"]


@pytest.mark.parametrize(
    "first",
    [
        f"/calls.json?{AUTH}&page=2",
        f"/api/v1/calls.xml?{AUTH}&page=2",
        f"/api/v2/calls.json?{AUTH}&page=2&sort_by=created_at&order=asc",
        f"/api/v3/calls.json?{AUTH}&page=2",
        f"/api/v4/calls.json?{AUTH}&page=2&created_at_start=2024-01-01T00:00:00+00:00",
        f"/numbers.json?{AUTH}&page=2",
    ],
)
async def test_following_every_rel_as_given_returns_that_page(
    gateway: str, sandbox: tuple[str, Any], client: httpx.AsyncClient, first: str
) -> None:
    page = await client.get(httpx.URL(gateway + first))
    assert page.status_code == 200
    links = _links(page.headers["link"])
    assert {"first", "prev"} <= set(links) or {"next", "last"} <= set(links)
    for rel, url in links.items():
        assert url.startswith(gateway), (rel, url)
        followed = await client.get(httpx.URL(url))  # exactly as given: no key added
        parts = urlsplit(url)
        direct = await client.get(httpx.URL(f"{sandbox[0]}{parts.path}?{parts.query}"))
        assert followed.status_code == 200, (rel, followed.text)
        assert followed.content == direct.content, rel
        wanted = re.search(r"(?:^|&)page=(\d+)", parts.query)
        assert wanted is not None, (rel, url)


async def test_unknown_facets_are_still_refused(gateway: str, client: httpx.AsyncClient) -> None:
    answer = await client.get(f"{gateway}/api/v1/reports.json?{AUTH}&{REPORT}&facet=zip")
    assert answer.status_code == 400
    assert "state" in answer.json()["fields"]["facet"]
