"""Table-driven pings (tests/ping/cases/*.json): request in -> upstream fields or error out.

Each case runs twice: through the pure parser, and end to end over real sockets
(client -> gateway -> sandbox), asserting on what the sandbox actually received, so
"nothing invalid is forwarded" is checked where it matters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.errors import GatewayError
from gateway.ping.parse import parse_ping
from tests.conftest import MakeGateway

CASES_DIR = Path(__file__).parent / "cases"


def _load() -> list[Any]:
    params = []
    for path in sorted(CASES_DIR.glob("*.json")):
        for case in json.loads(path.read_text())["cases"]:
            params.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return params


CASES = _load()


def _body(request: dict[str, Any]) -> bytes:
    if "body_hex" in request:
        return bytes.fromhex(request["body_hex"])
    return request.get("body", "").encode()


@pytest.mark.parametrize("case", CASES)
def test_parser(case: dict[str, Any]) -> None:
    request, expect = case["request"], case["expect"]
    query = request.get("query", "").encode()
    if expect["status"] < 300:
        ping = parse_ping(query, _body(request), request.get("content_type"))
        assert ping.upstream_fields() == expect["upstream"]
        return
    with pytest.raises(GatewayError) as info:
        parse_ping(query, _body(request), request.get("content_type"))
    assert info.value.status == expect["status"]
    assert info.value.error == expect["error"]
    if "fields" in expect:
        assert sorted(info.value.fields or {}) == sorted(expect["fields"])


@pytest.mark.parametrize("case", CASES)
async def test_end_to_end(
    case: dict[str, Any],
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    client: httpx.AsyncClient,
) -> None:
    request, expect = case["request"], case["expect"]
    upstream_url, upstream = sandbox
    headers = {}
    if "content_type" in request:
        headers["content-type"] = request["content_type"]
    async with make_gateway(rtb_upstream_url=upstream_url) as gw:
        # Build the URL by hand: httpx would re-encode a raw '+' that curl sends as is.
        url = f"{gw}/rtbs.json"
        if request.get("query"):
            url += "?" + request["query"]
        resp = await client.post(httpx.URL(url), content=_body(request), headers=headers)
    received = list(upstream.state.sandbox.received)
    assert resp.status_code == expect["status"], resp.text
    assert resp.headers["content-type"].startswith("application/json")
    if expect["status"] < 300:
        assert len(received) == 1
        assert received[0]["fields"] == expect["upstream"]
        assert received[0]["content_type"] == "application/json"
        assert resp.json()["status"] == "reserved"
    else:
        assert received == []
        body = resp.json()
        assert body["error"] == expect["error"]
        assert isinstance(body["message"], str)
        if "fields" in expect:
            assert sorted(body["fields"]) == sorted(expect["fields"])
