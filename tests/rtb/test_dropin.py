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
