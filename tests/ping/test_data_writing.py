"""Call data writing (``POST /data_writing``, ``GET /data_writing/{key}``).

Table-driven like the pings: each case in tests/ping/data_writing_cases/*.json runs through
the pure parser and end to end (client -> gateway -> sandbox), asserting on what the
sandbox received, so "nothing invalid is forwarded" is checked where it matters. And every
ping case of tests/ping/cases/ runs through both parsers: the caller number, the key and
the tags obey the same rules in both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from gateway.config import Secret
from gateway.errors import GatewayError
from gateway.ping.data_writing import parse_data_write
from gateway.ping.parse import parse_ping
from tests.conftest import MakeGateway

HERE = Path(__file__).parent
KEY = "0b4d1a57-6c53-4c1e-9f0e-5d2a8f6b7c10"  # the sandbox's data-writing postback key


def _load(folder: str) -> list[Any]:
    params = []
    for path in sorted((HERE / folder).glob("*.json")):
        for case in json.loads(path.read_text())["cases"]:
            params.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return params


CASES = _load("data_writing_cases")
PING_CASES = _load("cases")


def _body(request: dict[str, Any]) -> bytes:
    if "body_hex" in request:
        return bytes.fromhex(request["body_hex"])
    return request.get("body", "").encode()


def _parse(request: dict[str, Any]) -> Any:
    query = request.get("query", "").encode()
    if request["method"] == "GET":
        return parse_data_write(query, b"", None, path_key=unquote(request["path_key"]))
    return parse_data_write(query, _body(request), request.get("content_type"))


@pytest.mark.parametrize("case", CASES)
def test_parser(case: dict[str, Any]) -> None:
    request, expect = case["request"], case["expect"]
    if expect["status"] < 300:
        assert _parse(request).upstream_fields() == expect["upstream"]
        return
    with pytest.raises(GatewayError) as info:
        _parse(request)
    assert (info.value.status, info.value.error) == (expect["status"], expect["error"])
    if "fields" in expect:
        assert sorted(info.value.fields or {}) == sorted(expect["fields"])


# Ping fields that are plain tags in a data write (or not needed there at all).
_PING_ONLY = {"publisher_id", "source_id", "inbound_number"}


@pytest.mark.parametrize("case", PING_CASES)
def test_the_ping_rules_apply_to_data_writing(case: dict[str, Any]) -> None:
    """A ping's caller number, key and tags are judged the same way in a data write."""
    request = case["request"]
    args = (request.get("query", "").encode(), _body(request), request.get("content_type"))
    try:
        ping = parse_ping(*args)
    except GatewayError as exc:
        ping_error = exc
    else:
        ping_error = None
    try:
        write = parse_data_write(*args)
    except GatewayError as exc:
        if ping_error is None:
            raise
        assert (exc.status, exc.error) == (ping_error.status, ping_error.error)
        # The ping's problems outside its own fields are the write's too; the write may
        # also refuse a ping-only field that is a tag here (control characters in it).
        ping_fields, write_fields = set(ping_error.fields or {}), set(exc.fields or {})
        assert ping_fields - _PING_ONLY <= write_fields <= ping_fields
        return
    if ping_error is not None:  # only publisher/inbound rules failed the ping
        assert set(ping_error.fields or {}) <= _PING_ONLY, ping_error.fields
        return
    assert write.key == ping.key
    assert write.caller_number == ping.caller_number
    assert ping.tags.items() <= write.tags.items()


def _url(gw: str, request: dict[str, Any]) -> httpx.URL:
    # Built by hand: httpx would re-encode a raw '+' that curl sends as is.
    url = f"{gw}/data_writing"
    if request["method"] == "GET":
        url += "/" + request["path_key"]
    if request.get("query"):
        url += "?" + request["query"]
    return httpx.URL(url)


@pytest.mark.parametrize("case", CASES)
async def test_end_to_end(
    case: dict[str, Any],
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    client: httpx.AsyncClient,
) -> None:
    request, expect = case["request"], case["expect"]
    upstream_url, upstream = sandbox
    headers = {"content-type": request["content_type"]} if "content_type" in request else {}
    async with make_gateway(rtb_upstream_url=upstream_url, data_writing_url=upstream_url) as gw:
        resp = await client.request(
            request["method"], _url(gw, request), content=_body(request), headers=headers
        )
    received = list(upstream.state.sandbox.received)
    assert resp.status_code == expect["status"], resp.text
    assert resp.headers["content-type"].startswith("application/json")
    if expect["status"] >= 300:
        assert received == []
        assert resp.json()["error"] == expect["error"]
        return
    (seen,) = received
    assert (seen["method"], seen["path"]) == (request["method"], "/data_writing")
    assert seen["fields"] == expect["upstream"]
    assert resp.json()["status"] == expect["answer_status"]


async def test_the_answer_comes_back_unchanged_and_is_never_retried(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    upstream_url, upstream = sandbox
    body = {"key": KEY, "caller_number": "+15125550199", "sandbox_status": "503"}
    direct = await client.post(f"{upstream_url}/data_writing", json=body)
    upstream.state.sandbox.received.clear()
    async with make_gateway(data_writing_url=upstream_url) as gw:
        through = await client.post(f"{gw}/data_writing", json=body)
        del body["sandbox_status"]
        unknown = await client.post(f"{gw}/data_writing", json={**body, "key": "nope"})
        metrics = (await client.get(f"{gw}/metrics")).text
    assert (through.status_code, through.content) == (direct.status_code, direct.content)
    assert through.status_code == 503
    assert unknown.status_code == 401  # the sandbox's answer for an unknown postback key
    assert len(upstream.state.sandbox.received) == 2  # once each, never retried
    assert 'method="POST",route="/data_writing",status="503"' in metrics
    assert 'upstream="data_writing"' in metrics


async def test_allow_list_and_rate_limits_guard_data_writing(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    upstream_url, upstream = sandbox
    query = "caller_number=%2B15125550199&age=39"
    async with make_gateway(
        data_writing_url=upstream_url, rtb_allowed_keys=Secret(KEY), rate_limit_per_key="1/h"
    ) as gw:
        stranger = await client.get(
            f"{gw}/data_writing/7fc40342-f0a0-4e8f-bf09-b3887eedcb4a?{query}"
        )
        first = await client.get(f"{gw}/data_writing/{KEY}?{query}")
        second = await client.get(f"{gw}/data_writing/{KEY}?{query}")
    assert stranger.status_code == 403
    assert first.status_code == 200
    assert second.status_code == 429
    assert "retry-after" in second.headers
    assert len(upstream.state.sandbox.received) == 1


# The key masked in logs, errors and metrics: tests/observe/test_canary.py sends the
# canary as a data-writing key (path and body) and as a caller-list key and Bearer secret.
