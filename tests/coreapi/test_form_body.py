"""A form body on a Core API GET: merged into the forwarded query and the cache key.

The issue's client is Python ``requests.get(url, data={...})``: credentials in the URL,
the window, the order and the page in a form body. Retreaver (Rack) reads that body; the
gateway used to drop it and answer page 1, newest first, every time. Every request here
goes through a real gateway in front of the real sandbox.
"""

from __future__ import annotations

from typing import Any

import httpx

from gateway.sandbox.api import CoreApiState
from tests.coreapi.conftest import AUTH, ServeGateway, raw_request

FORM = {"content-type": "application/x-www-form-urlencoded"}


async def _pages(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    """Every call an index URL pages through (following ``page``), in order."""
    calls: list[dict[str, Any]] = []
    for page in range(1, 10):
        rows = (await client.get(f"{url}&page={page}")).json()
        if not rows:
            return calls
        calls += [item["call"] for item in rows]
    raise AssertionError("more pages than the sandbox holds")


async def test_requests_get_with_data_pages_through_the_window_in_order(
    serve_gateway: ServeGateway, sandbox_url: str, core: CoreApiState, client: httpx.AsyncClient
) -> None:
    everything = await _pages(client, f"{sandbox_url}/calls.json?{AUTH}&order=asc")
    start, end = everything[5]["created_at"], everything[40]["created_at"]
    window = f"created_at_start={start}&created_at_end={end}&order=asc&sort_by=created_at"
    # What Retreaver answers with every parameter in the URL.
    wanted = await _pages(client, f"{sandbox_url}/calls.json?{AUTH}&{window.replace('+', '%2B')}")
    assert 25 < len(wanted) < len(everything)  # more than one page, fewer than all
    core.received.clear()
    seen: list[dict[str, Any]] = []
    async with serve_gateway() as (gw, _):
        for page in range(1, 9):  # the client: 8 requests
            resp = await client.request(
                "GET",
                f"{gw}/calls.json?{AUTH}",
                data={
                    "created_at_start": start,
                    "created_at_end": end,
                    "order": "asc",
                    "sort_by": "created_at",
                    "page": str(page),
                },
            )
            assert resp.status_code == 200, resp.text
            rows = [item["call"] for item in resp.json()]
            if not rows:
                break
            seen += rows
    assert seen == wanted
    assert page == 3  # pages 1 and 2, then an empty page 3 ends the loop
    # The upstream got the body's parameters in its query, the credentials kept.
    first = core.received[0]["query"]
    assert first.startswith(AUTH + "&")
    assert {"order=asc", "page=1", "sort_by=created_at"} <= set(first.split("&"))
    assert "created_at_start=" in first


async def test_the_body_wins_over_the_query_and_is_part_of_the_cache_key(
    serve_gateway: ServeGateway, core: CoreApiState, client: httpx.AsyncClient
) -> None:
    async with serve_gateway() as (gw, _):
        url = f"{gw}/calls.json?{AUTH}&order=desc&page=1"
        newest = await client.get(url)
        body_asc = await client.request("GET", url, data={"order": "asc"})
        body_asc_again = await client.request("GET", url, data={"order": "asc"})
        body_page_2 = await client.request("GET", url, data={"order": "asc", "page": "2"})
        json_body = await client.request("GET", url, json={"order": "asc"})
    assert [r.status_code for r in (newest, body_asc, body_asc_again, body_page_2)] == [200] * 4
    assert [r.headers["x-cache"] for r in (newest, body_asc, body_asc_again, body_page_2)] == [
        "miss",
        "miss",
        "hit",
        "miss",
    ]
    newest_first = [c["call"]["uuid"] for c in newest.json()]
    oldest_first = [c["call"]["uuid"] for c in body_asc.json()]
    assert oldest_first != newest_first
    assert body_asc_again.content == body_asc.content
    assert not set(oldest_first) & {c["call"]["uuid"] for c in body_page_2.json()}
    # A JSON body on a GET means nothing to Retreaver: ignored, the first answer again.
    assert (json_body.headers["x-cache"], json_body.content) == ("hit", newest.content)
    queries = [r["query"] for r in core.received]
    assert queries == [
        f"{AUTH}&order=desc&page=1",
        f"{AUTH}&page=1&order=asc",
        f"{AUTH}&order=asc&page=2",
    ]


async def test_credentials_in_the_body_count_as_credentials(
    serve_gateway: ServeGateway, client: httpx.AsyncClient
) -> None:
    """``api_key`` in the body is forwarded and keys the cache: no one sees another's page."""
    async with serve_gateway() as (gw, _):
        good = await client.request(
            "GET", f"{gw}/calls.json", data={"api_key": "woofwoofwoof", "company_id": "1"}
        )
        other = await client.request(
            "GET", f"{gw}/calls.json", data={"api_key": "meowmeowmeow", "company_id": "1"}
        )
        none = await client.get(f"{gw}/calls.json")
    assert good.status_code == 200
    assert good.headers["x-cache"] == "miss"
    assert other.status_code == 403
    assert none.status_code == 401


async def test_a_body_that_would_be_refused_in_the_url_is_refused(
    serve_gateway: ServeGateway, core: CoreApiState
) -> None:
    """Non-ASCII, spaces or an oversize body: refused before anything is forwarded."""
    async with serve_gateway() as (gw, _):
        answers = []
        for body in (b"order=\xc3\xa9", b"order=a sc", b"x=" + b"y" * 9000):
            headers = (
                b"Content-Type: application/x-www-form-urlencoded",
                b"Content-Length: %d" % len(body),
            )
            status, _, raw = await raw_request(
                gw, f"/calls.json?{AUTH}".encode(), headers=headers, body=body
            )
            answers.append((status, raw))
        # Fits on its own, but not merged with the URL's query.
        long_url = f"/calls.json?{AUTH}&note={'n' * 6000}".encode()
        body = b"other=" + b"o" * 3000
        headers = (
            b"Content-Type: application/x-www-form-urlencoded",
            b"Content-Length: %d" % len(body),
        )
        status, _, raw = await raw_request(gw, long_url, headers=headers, body=body)
        answers.append((status, raw))
    assert [status for status, _ in answers] == [400, 400, 413, 414]
    assert all(b'"error"' in raw for _, raw in answers)
    assert list(core.received) == []


async def test_the_sandbox_alone_reads_a_form_body_on_a_get(
    sandbox_url: str, client: httpx.AsyncClient
) -> None:
    """So a script tried against ``gateway sandbox`` sees what Retreaver does."""
    url = f"{sandbox_url}/calls.json?{AUTH}"
    in_url = await client.get(f"{url}&order=asc&page=2")
    in_body = await client.request("GET", url, data={"order": "asc", "page": "2"})
    overridden = await client.request("GET", f"{url}&order=desc", data={"order": "asc"})
    first_asc = await client.get(f"{url}&order=asc")
    assert in_body.status_code == 200
    assert in_body.json() == in_url.json()
    assert overridden.json() == first_asc.json()


async def test_a_report_reads_its_parameters_from_the_form_body_and_checks_them(
    serve_gateway: ServeGateway, core: CoreApiState, client: httpx.AsyncClient
) -> None:
    """The merged query is what the report check sees: bad dates in a body are a 400."""
    window = {"created_at_start": "2024-01-01", "created_at_end": "2025-12-31"}
    async with serve_gateway() as (gw, _):
        url = f"{gw}/api/v1/reports.json?{AUTH}"
        good = await client.request(
            "GET", url, data={"domain": "calls", "facet": "daily", **window}
        )
        in_url = await client.get(
            f"{url}&domain=calls&facet=daily&created_at_start=2024-01-01&created_at_end=2025-12-31"
        )
        core.received.clear()
        bad = await client.request(
            "GET",
            url,
            data={"domain": "calls", "facet": "daily", **window, "created_at_end": "2023-01-01"},
        )
    assert good.status_code == 200, good.text
    assert good.json() == in_url.json()
    assert good.json()["count_total"] > 0
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"created_at_end"}
    assert list(core.received) == []
