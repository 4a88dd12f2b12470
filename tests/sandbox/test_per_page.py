"""``per_page`` on the call log: honoured from 1 to 100, as Retreaver's export script uses it.

The reference documents 25 a page and asks for ``per_page=100`` on ``/api/v1/calls.json``
in its own export script; it states no maximum. The sandbox serves 1 to 100 a page and
100 for more; anything that is not a positive number gets the default.
"""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.requests import Request

from gateway.sandbox.api.paging import MAX_CALLS_PER_PAGE, PER_PAGE, per_page_of
from tests.conftest import MakeGateway
from tests.sandbox.conftest import AUTH, C1

_LINK = re.compile(r'<([^>]+)>; rel="(\w+)"')


def _links(response: httpx.Response) -> dict[str, str]:
    header = response.headers.get("link")
    return {rel: url for url, rel in _LINK.findall(header)} if header else {}


@pytest.mark.parametrize("path", ["/calls.json", "/api/v1/calls.json", "/api/v4/calls.json"])
async def test_per_page_100_answers_every_call_on_one_page_through_the_gateway(
    path: str, make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    """Retreaver's export example: ``per_page=100``."""
    async with make_gateway(core_api_url=sandbox_url, core_api_v2_url=sandbox_url) as gw:
        resp = await client.get(f"{gw}{path}?{AUTH}&per_page=100")
    assert resp.status_code == 200
    assert len(resp.json()) == len(C1.calls) == 60
    assert "link" not in resp.headers  # everything fits on one page


async def test_a_small_per_page_pages_and_the_links_keep_it(
    sandbox_url: str, client: httpx.AsyncClient
) -> None:
    base = f"{sandbox_url}/api/v1/calls.json?{AUTH}&order=asc&per_page=7"
    url, sizes, uuids = f"{base}&page=1", [], []
    while url:
        resp = await client.get(url)
        rows = resp.json()
        sizes.append(len(rows))
        uuids += [row["call"]["uuid"] for row in rows]
        url = _links(resp).get("next", "")
        assert not url or "per_page=7" in url
    assert sizes == [7] * 8 + [4]
    assert len(set(uuids)) == 60
    first = _links(await client.get(f"{base}&page=1"))
    assert first["last"] == f"{base}&page=9"


@pytest.mark.parametrize("value", ["0", "-5", "abc", ""])
async def test_a_per_page_that_is_not_a_positive_number_gets_the_default(
    value: str, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    resp = await client.get(f"{sandbox_url}/calls.json?{AUTH}&per_page={value}")
    assert resp.status_code == 200
    assert len(resp.json()) == 25


async def test_other_indexes_stay_at_25(sandbox_url: str, client: httpx.AsyncClient) -> None:
    resp = await client.get(f"{sandbox_url}/numbers.json?{AUTH}&per_page=100")
    assert len(resp.json()) == 25
    assert "next" in _links(resp)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"per_page=100", 100), (b"per_page=101", 100), (b"per_page=5000", 100), (b"", 25)],
)
def test_per_page_is_bounded(raw: bytes, expected: int) -> None:
    request = Request({"type": "http", "method": "GET", "query_string": raw, "headers": []})
    assert per_page_of(request) == expected
    assert (MAX_CALLS_PER_PAGE, PER_PAGE) == (100, 25)
