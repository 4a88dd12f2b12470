"""What other people's Retreaver clients send, through a real gateway in front of the sandbox.

Each test is a request exactly as a third-party client sends it (an MCP server, a PHP lead
handler, a Python module...), which Retreaver accepts because a Rails app ignores the
parameters it does not use. Through the gateway each must do what it does at Retreaver,
while what was refused for a reason (bad keys, bad numbers, control characters) stays
refused and is never forwarded.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import RTB_KEY, MakeGateway

DATA_KEY = "0b4d1a57-6c53-4c1e-9f0e-5d2a8f6b7c10"  # the sandbox's data-writing postback key
PING = {"key": RTB_KEY, "publisher_id": "pub", "caller_number": "+18558485518"}


async def _raw_get(base: str, target: str) -> tuple[int, dict[str, Any]]:
    """A GET sent byte for byte: httpx would resolve a ``..`` segment before sending it."""
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


# -- the key grammar: "." and ".." are dot-segments, never keys ---------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/data_writing/..?caller_number=%2B15125550199&age=39",
        "/data_writing/.?caller_number=%2B15125550199&age=39",
        "/data_writing/%2e%2e?caller_number=%2B15125550199&age=39",
        "/data_writing/%2E%2e?caller_number=%2B15125550199",
        "/data_writing?key=..&caller_number=%2B15125550199",
        "/data_writing?key=%2e&caller_number=%2B15125550199",
    ],
)
async def test_dot_segment_keys_are_refused_and_never_forwarded(
    target: str, make_gateway: MakeGateway, sandbox: tuple[str, Any]
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, data_writing_url=url) as gw:
        status, body = await _raw_get(gw, target)
    assert status == 422, body
    assert body["error"] == "invalid_request"
    assert set(body["fields"]) == {"key"}
    assert list(app.state.sandbox.received) == []


@pytest.mark.parametrize("key", ["..", ".", "%2e%2e"])
async def test_dot_segment_keys_are_refused_on_pings_and_confirmations(
    key: str, make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    uuid = "c6e4ce37-9b49-46af-bd8e-16cb7753499d"
    async with make_gateway(rtb_upstream_url=url) as gw:
        ping = await client.post(
            httpx.URL(f"{gw}/rtbs.json?key={key}&publisher_id=p&caller_number=%2B18558485518")
        )
        confirm = await client.put(httpx.URL(f"{gw}/rtbs/{uuid}.json?key={key}&status=confirmed"))
    for resp in (ping, confirm):
        assert resp.status_code == 422, resp.text
        assert set(resp.json()["fields"]) == {"key"}
    assert list(app.state.sandbox.received) == []


# -- confirmations accept the fields they do not use ----------------------------------------


async def test_a_confirmation_with_credentials_in_the_query_is_confirmed(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    """``PUT /rtbs/{uuid}.json?api_key=…&company_id=1`` with ``{"key", "status"}``: a client
    that adds its credentials to every request."""
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url) as gw:
        reserved = (await client.post(f"{gw}/rtbs.json", json=PING)).json()
        resp = await client.put(
            f"{gw}/rtbs/{reserved['uuid']}.json?api_key=woofwoofwoof&company_id=1",
            json={"key": RTB_KEY, "status": "confirmed"},
        )
        again = await client.post(f"{gw}/rtbs.json", json=PING)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "confirmed"
    assert resp.json()["uuid"] == reserved["uuid"]
    # Dropped, not forwarded: a confirmation carries nothing else upstream.
    confirm = app.state.sandbox.received[1]
    assert confirm["fields"] == {"key": RTB_KEY, "status": "confirmed"}
    assert "woofwoofwoof" not in json.dumps(confirm)
    # The shielded copy of the reservation follows the confirmation.
    assert again.json()["status"] == "confirmed"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_publisher_id_and_tags_in_a_confirmation_are_dropped(
    method: str, make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url) as gw:
        reserved = (await client.post(f"{gw}/rtbs.json", json=PING)).json()
        form = await client.request(
            method,
            f"{gw}/rtbs/{reserved['uuid']}.json?publisher_id=pub&api_key=woofwoofwoof",
            data={"key": RTB_KEY, "status": "confirmed", "sub_id": "s1", "age": "39"},
        )
    assert form.status_code == 200, form.text
    assert form.json()["status"] == "confirmed"
    assert app.state.sandbox.received[-1]["fields"] == {"key": RTB_KEY, "status": "confirmed"}


async def test_a_confirmation_still_refuses_what_it_uses(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    """Extra fields never rescue a bad key, status or uuid, nor a body that does not parse."""
    url, app = sandbox
    good = "c6e4ce37-9b49-46af-bd8e-16cb7753499d"
    extra = "api_key=woofwoofwoof&company_id=1&publisher_id=pub"
    async with make_gateway(rtb_upstream_url=url) as gw:
        bad_key = await client.put(f"{gw}/rtbs/{good}.json?{extra}&key=a%0Db&status=confirmed")
        bad_status = await client.put(f"{gw}/rtbs/{good}.json?{extra}&key={RTB_KEY}&status=x")
        bad_uuid = await client.put(f"{gw}/rtbs/nope.json?{extra}&key={RTB_KEY}&status=confirmed")
        malformed = await client.put(
            f"{gw}/rtbs/{good}.json?{extra}",
            content=b'{"key": ',
            headers={"content-type": "application/json"},
        )
        xml = await client.put(
            f"{gw}/rtbs/{good}.json?{extra}&key={RTB_KEY}&status=confirmed",
            content=b"<confirm/>",
            headers={"content-type": "text/xml"},
        )
    assert [r.status_code for r in (bad_key, bad_status, bad_uuid, malformed, xml)] == [
        422,
        422,
        422,
        400,
        415,
    ]
    assert set(bad_key.json()["fields"]) == {"key"}
    assert set(bad_status.json()["fields"]) == {"status"}
    assert set(bad_uuid.json()["fields"]) == {"uuid"}
    assert list(app.state.sandbox.received) == []


# -- GET /data_writing with the key in the query ---------------------------------------------


async def test_get_data_writing_with_the_key_in_the_query_is_served_as_the_path_form(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    """``GET /data_writing?key=…&caller_number=…&age=39``: the PHP handler's request."""
    url, app = sandbox
    query = f"key={DATA_KEY}&caller_number=+15125550199&age=39"
    async with make_gateway(data_writing_url=url) as gw:
        in_query = await client.get(httpx.URL(f"{gw}/data_writing?{query}"))
        in_path = await client.get(
            httpx.URL(f"{gw}/data_writing/{DATA_KEY}?caller_number=+15125550199&age=39")
        )
    assert in_query.status_code == in_path.status_code == 200, in_query.text
    assert in_query.json() == in_path.json()
    assert in_query.json()["tag_values"] == {"age": "39"}
    first, second = app.state.sandbox.received
    assert first == {**second, "at": first["at"]}
    assert (first["method"], first["path"]) == ("GET", "/data_writing")
    assert first["fields"] == {"key": DATA_KEY, "caller_number": "+15125550199", "age": "39"}


async def test_get_data_writing_in_the_query_refuses_what_the_path_form_refuses(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    async with make_gateway(data_writing_url=url) as gw:
        no_key = await client.get(f"{gw}/data_writing?caller_number=%2B15125550199&age=39")
        bad_key = await client.get(f"{gw}/data_writing?key=a%20b&caller_number=%2B15125550199")
        bad_number = await client.get(f"{gw}/data_writing?key={DATA_KEY}&caller_number=12345")
        crlf = await client.get(
            f"{gw}/data_writing?key={DATA_KEY}&caller_number=%2B15125550199&note=a%0D%0Ab"
        )
        both = await client.get(
            f"{gw}/data_writing/{DATA_KEY}?key=other&caller_number=%2B15125550199"
        )
        put = await client.put(f"{gw}/data_writing?key={DATA_KEY}&caller_number=%2B15125550199")
    assert {r.status_code for r in (no_key, bad_key, bad_number, crlf, both)} == {422}
    assert [set(r.json()["fields"]) for r in (no_key, bad_key, bad_number, crlf, both)] == [
        {"key"},
        {"key"},
        {"caller_number"},
        {"note"},
        {"key"},
    ]
    assert put.status_code == 405
    assert list(app.state.sandbox.received) == []


async def test_a_form_body_on_a_data_writing_get_counts_and_wins(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    """Rack reads a form body on a GET; a JSON or other body on a GET stays ignored."""
    url, app = sandbox
    async with make_gateway(data_writing_url=url) as gw:
        form = await client.request(
            "GET",
            f"{gw}/data_writing?key={DATA_KEY}&age=20",
            data={"caller_number": "+15125550199", "age": "39"},
        )
        bad = await client.request(
            "GET", f"{gw}/data_writing/{DATA_KEY}", data={"caller_number": "12345"}
        )
        other = await client.request(
            "GET",
            f"{gw}/data_writing/{DATA_KEY}?caller_number=%2B15125550199",
            content=b"<not-read/>",
            headers={"content-type": "text/xml"},
        )
    assert form.status_code == 200, form.text
    assert bad.status_code == 422
    assert set(bad.json()["fields"]) == {"caller_number"}
    assert other.status_code == 200, other.text
    first, second = app.state.sandbox.received
    assert first["fields"] == {"key": DATA_KEY, "caller_number": "+15125550199", "age": "39"}
    assert second["fields"] == {"key": DATA_KEY, "caller_number": "+15125550199"}


async def test_the_sandbox_alone_serves_get_data_writing_with_the_key_in_the_query(
    sandbox_url: str, client: httpx.AsyncClient
) -> None:
    """So a script tried against ``gateway sandbox`` meets what it meets at Retreaver."""
    query = "caller_number=%2B15125550199&age=39"
    in_query = await client.get(f"{sandbox_url}/data_writing?key={DATA_KEY}&{query}")
    in_path = await client.get(f"{sandbox_url}/data_writing/{DATA_KEY}?{query}")
    unknown = await client.get(f"{sandbox_url}/data_writing?key=nope&{query}")
    assert in_query.status_code == in_path.status_code == 200
    assert in_query.json() == in_path.json()
    assert unknown.status_code == 401


@pytest.mark.parametrize("path", [f"/data_writing/{DATA_KEY}", "/data_writing"])
async def test_a_head_never_writes_data(
    path: str, make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    """HEAD is routed wherever GET is; it must not become a write (nor a POST upstream)."""
    url, app = sandbox
    async with make_gateway(data_writing_url=url) as gw:
        resp = await client.head(
            httpx.URL(f"{gw}{path}?key={DATA_KEY}&caller_number=%2B15125550199&age=39")
        )
    assert resp.status_code == 405
    assert resp.headers["allow"] == "GET, POST"
    assert list(app.state.sandbox.received) == []
