"""25 per page, the ``Link`` header, and the call log's sort and filter parameters."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.sandbox.conftest import AUTH, C1

pytestmark = pytest.mark.asyncio(loop_scope="module")

_LINK = re.compile(r'<([^>]+)>; rel="(\w+)"')


def links(response: httpx.Response) -> dict[str, str]:
    header = response.headers.get("link")
    return {rel: url for url, rel in _LINK.findall(header)} if header else {}


async def test_walking_next_links_returns_every_call_once_in_order(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    url = f"{shared_sandbox}/calls.json?{AUTH}&sort_by=created_at&order=asc"
    sizes, uuids, created = [], [], []
    while url:
        response = await shared_client.get(url)
        assert response.status_code == 200
        page = [item["call"] for item in response.json()]
        sizes.append(len(page))
        uuids += [c["uuid"] for c in page]
        created += [c["created_at"] for c in page]
        url = links(response).get("next", "")
    assert sizes == [25, 25, 10]
    assert len(set(uuids)) == len(C1.calls) == 60
    assert created == sorted(created)


async def test_link_rels_and_urls_per_page(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    query = f"{AUTH}&sort_by=created_at&order=asc"
    base = f"{shared_sandbox}/calls.json?{query}"
    first = await shared_client.get(f"{base}&page=1")
    assert first.headers["link"] == (f'<{base}&page=3>; rel="last", <{base}&page=2>; rel="next"')
    middle = links(await shared_client.get(f"{base}&page=2"))
    assert list(middle) == ["first", "prev", "last", "next"]
    assert middle == {
        "first": f"{base}&page=1",
        "prev": f"{base}&page=1",
        "last": f"{base}&page=3",
        "next": f"{base}&page=3",
    }
    last = links(await shared_client.get(f"{base}&page=3"))
    assert last == {"first": f"{base}&page=1", "prev": f"{base}&page=2"}
    beyond = await shared_client.get(f"{base}&page=9")
    assert beyond.json() == []
    assert links(beyond) == {"first": f"{base}&page=1", "prev": f"{base}&page=8"}


async def test_link_keeps_query_as_sent_and_uses_the_request_host(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    # page in the middle, an unencoded + (read as a space), a %2B: all kept byte for byte
    query = "page=2&api_key=woofwoofwoof&created_at_start=2024-11-01T00:00:00+00:00&company_id=1"
    response = await shared_client.get(
        f"{shared_sandbox}/calls.json?{query}", headers={"Host": "api.example.test"}
    )
    assert response.status_code == 200
    found = links(response)
    assert found["next"] == (
        "http://api.example.test/calls.json?page=3&api_key=woofwoofwoof"
        "&created_at_start=2024-11-01T00:00:00+00:00&company_id=1"
    )


async def test_one_page_lists_have_no_link(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    response = await shared_client.get(f"{shared_sandbox}/affiliates.json?{AUTH}")
    assert len(response.json()) == len(C1.affiliates)
    assert "link" not in response.headers


async def test_numbers_and_v2_calls_paginate_too(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    numbers = await shared_client.get(f"{shared_sandbox}/numbers.json?{AUTH}")
    assert len(numbers.json()) == 25
    assert set(links(numbers)) == {"last", "next"}
    second = await shared_client.get(links(numbers)["next"])
    assert len(second.json()) == len(C1.numbers) - 25
    v2 = await shared_client.get(f"{shared_sandbox}/api/v2/calls.json?{AUTH}")
    assert len(v2.json()) == 25
    assert links(v2)["last"].endswith("page=3")


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5"])
async def test_bad_page_is_400(
    shared_sandbox: str, shared_client: httpx.AsyncClient, page: str
) -> None:
    response = await shared_client.get(f"{shared_sandbox}/calls.json?{AUTH}&page={page}")
    assert response.status_code == 400
    assert "page" in response.json()["error"]


async def test_default_order_is_newest_first(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    body = (await shared_client.get(f"{shared_sandbox}/calls.json?{AUTH}")).json()
    newest = max(C1.calls, key=lambda c: c.created_at)
    assert body[0]["call"]["uuid"] == newest.uuid
    created = [item["call"]["created_at"] for item in body]
    assert created == sorted(created, reverse=True)


async def test_updated_at_is_always_descending(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    body = (
        await shared_client.get(f"{shared_sandbox}/calls.json?{AUTH}&sort_by=updated_at&order=asc")
    ).json()
    updated = [item["call"]["updated_at"] for item in body]
    assert updated == sorted(updated, reverse=True)


async def test_created_at_range_is_inclusive(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    start, end = C1.calls[10], C1.calls[20]
    query = (
        f"created_at_start={start.created_at.isoformat().replace('+', '%2B')}"
        f"&created_at_end={end.created_at.isoformat().replace('+', '%2B')}"
    )
    body = (await shared_client.get(f"{shared_sandbox}/calls.json?{AUTH}&{query}")).json()
    assert [item["call"]["uuid"] for item in body] == [c.uuid for c in reversed(C1.calls[10:21])]


async def test_a_day_by_dates(shared_sandbox: str, shared_client: httpx.AsyncClient) -> None:
    query = "created_at_start=2024-11-02&created_at_end=2024-11-03"
    body = (await shared_client.get(f"{shared_sandbox}/calls.json?{AUTH}&{query}")).json()
    expected = [c for c in C1.calls if c.created_at.date().isoformat() == "2024-11-02"]
    assert len(body) == len(expected) > 0


@pytest.mark.parametrize("spelling", ["%2B17195220377", "+17195220377", "17195220377"])
async def test_caller_filter(
    shared_sandbox: str, shared_client: httpx.AsyncClient, spelling: str
) -> None:
    body = (
        await shared_client.get(f"{shared_sandbox}/calls.json?{AUTH}&caller={spelling}&page=1")
    ).json()
    expected = [c for c in C1.calls if c.caller == "+17195220377"][:25]
    assert expected
    assert {item["call"]["uuid"] for item in body} == {c.uuid for c in expected}


@pytest.mark.parametrize(
    ("param", "attr"),
    [("client_afid", "afid"), ("client_cid", "cid"), ("client_tid", "tid"), ("sub_id", "sid")],
)
async def test_client_id_filters(
    shared_sandbox: str, shared_client: httpx.AsyncClient, param: str, attr: str
) -> None:
    value = next(getattr(c, attr) for c in C1.calls if getattr(c, attr))
    expected = [c for c in C1.calls if getattr(c, attr) == value]
    body = (
        await shared_client.get(f"{shared_sandbox}/api/v2/calls.json?{AUTH}&{param}={value}")
    ).json()
    assert len(body) == min(len(expected), 25)
    assert {item["call"][attr] for item in body} == {value}


@pytest.mark.parametrize(
    "query",
    ["sort_by=caller", "order=up", "created_at_start=yesterday", "created_at_end=2024-13-01"],
)
async def test_bad_call_filters_are_400(
    shared_sandbox: str, shared_client: httpx.AsyncClient, query: str
) -> None:
    response = await shared_client.get(f"{shared_sandbox}/calls.json?{AUTH}&{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["error"]
