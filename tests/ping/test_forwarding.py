"""End to end over real sockets: publisher -> gateway -> sandbox (or a test upstream)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import RTB_KEY, MakeGateway

PING = f"key={RTB_KEY}&publisher_id=retreaver_pub&caller_number=+18558485518"


async def test_valid_ping_is_forwarded_and_answer_returned_unchanged(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url) as gw:
        resp = await client.post(f"{gw}/rtbs.json?{PING}&caller_zip=12344&age=25")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "reserved"
    assert "retreaver_ping_shield" not in body
    received = list(app.state.sandbox.received)
    assert len(received) == 1
    assert received[0]["fields"] == {
        "key": RTB_KEY,
        "publisher_id": "retreaver_pub",
        "caller_number": "+18558485518",
        "caller_zip": "12344",
        "age": "25",
    }
    assert resp.headers["x-request-id"]
