"""The upstream misbehaves: slow, failing, resetting, unreachable, answering garbage.

Every case is over real sockets and checks the status, the JSON error body, and that
the POST reached the upstream at most once (it is never retried).
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import RTB_KEY, MakeGateway
from tests.support.ports import free_port
from tests.support.raw_upstream import raw_upstream
from tests.support.scripted_upstream import Reply, Seen, scripted_upstream

PING = f"key={RTB_KEY}&publisher_id=pub&caller_number=%2B18558485518"


async def test_slow_upstream_is_504_within_the_deadline(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    async with make_gateway(rtb_upstream_url=url, rtb_timeout_ms=200) as gw:
        resp = await client.post(f"{gw}/rtbs.json?{PING}&sandbox_delay_ms=1500")
    assert resp.status_code == 504
    assert resp.json()["error"] == "upstream_timeout"
    assert len(app.state.sandbox.received) == 1


async def test_upstream_error_status_and_body_pass_through(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    async with make_gateway(rtb_upstream_url=url) as gw:
        resp = await client.post(f"{gw}/rtbs.json?{PING}&sandbox_status=503")
        no_target = await client.post(f"{gw}/rtbs.json?{PING}&sandbox_outcome=no-target")
    assert resp.status_code == 503
    assert resp.json() == {"error": "sandbox error 503"}
    assert no_target.status_code == 200
    assert no_target.json() == {"status": "no-target"}


async def test_non_json_answer_passes_through_unchanged(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    async with make_gateway(rtb_upstream_url=url) as gw:
        resp = await client.post(f"{gw}/rtbs.json?{PING}&sandbox_outcome=garbage")
    assert resp.status_code == 200
    assert resp.content == b"<html>upstream proxy error</html>"
    assert resp.headers["content-type"].startswith("text/html")


async def test_connection_reset_is_502_and_not_retried(
    make_gateway: MakeGateway, client: httpx.AsyncClient
) -> None:
    async with raw_upstream("reset") as (url, upstream), make_gateway(rtb_upstream_url=url) as gw:
        resp = await client.post(f"{gw}/rtbs.json?{PING}")
    assert resp.status_code == 502
    assert resp.json()["error"] == "bad_gateway"
    assert upstream.requests == 1


async def test_connection_closed_without_answer_is_502_and_not_retried(
    make_gateway: MakeGateway, client: httpx.AsyncClient
) -> None:
    async with raw_upstream("close") as (url, upstream), make_gateway(rtb_upstream_url=url) as gw:
        resp = await client.post(f"{gw}/rtbs.json?{PING}")
    assert resp.status_code == 502
    assert upstream.requests == 1


async def test_hanging_upstream_is_504(
    make_gateway: MakeGateway, client: httpx.AsyncClient
) -> None:
    async with (
        raw_upstream("hang") as (url, upstream),
        make_gateway(rtb_upstream_url=url, rtb_timeout_ms=300) as gw,
    ):
        resp = await client.post(f"{gw}/rtbs.json?{PING}")
    assert resp.status_code == 504
    assert upstream.requests == 1


async def test_unreachable_upstream_is_502(
    make_gateway: MakeGateway, client: httpx.AsyncClient
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with make_gateway(rtb_upstream_url=dead) as gw:
        resp = await client.post(f"{gw}/rtbs.json?{PING}")
    assert resp.status_code == 502
    body = resp.json()
    assert body["error"] == "bad_gateway"
    assert "127.0.0.1" not in body["message"]
    assert RTB_KEY not in resp.text


async def test_an_answer_over_the_limit_is_502_and_its_connection_is_not_reused(
    make_gateway: MakeGateway, client: httpx.AsyncClient
) -> None:
    """Declared or chunked, an answer over GATEWAY_RTB_MAX_ANSWER_BYTES is refused and
    the connection closed: the next ping gets a fresh connection and a clean answer."""
    big = b'{"pad":"' + b"x" * 20_000 + b'"}'
    reservation = b'{"status":"no-target"}'

    # Neither big answer ever finishes: had its connection gone back to the pool, the
    # next ping would wait on it until its deadline.
    replies = iter(
        [
            Reply(body=big, unfinished=True),
            Reply(body=big, chunked=True, unfinished=True),
            Reply(body=reservation),
        ]
    )

    def answer(_seen: Seen) -> Reply:
        return next(replies)

    async with (
        scripted_upstream(answer) as upstream,
        make_gateway(rtb_upstream_url=upstream.url, rtb_max_answer_bytes=10_000) as gw,
    ):
        declared = await client.post(f"{gw}/rtbs.json?{PING}")
        chunked = await client.post(f"{gw}/rtbs.json?{PING}&t=chunked")  # a new caller
        after = await client.post(f"{gw}/rtbs.json?{PING[:-1]}9")
        connections = upstream.connections
    for refused in (declared, chunked):
        assert refused.status_code == 502
        assert refused.json()["error"] == "bad_gateway"
        assert "GATEWAY_RTB_MAX_ANSWER_BYTES" in refused.json()["message"]
    assert after.status_code == 200
    assert after.content == reservation
    assert connections == 3  # neither refused connection went back to the pool


async def test_a_status_outside_100_to_599_is_502_on_every_upstream(
    make_gateway: MakeGateway, client: httpx.AsyncClient
) -> None:
    """HTTP status codes are 100-599 (RFC 9110 15); llhttp and aiohttp read any three
    digits. Passed on, 600 or 999 made uvicorn raise: no answer, a traceback each time."""

    def answer(seen: Seen) -> Reply:
        return Reply(status=999 if "odd" in seen.target else 600, body=b'{"status":"reserved"}')

    async with (
        scripted_upstream(answer) as upstream,
        make_gateway(
            rtb_upstream_url=upstream.url,
            data_writing_url=upstream.url,
            core_api_url=upstream.url,
            core_api_v2_url=upstream.url,
        ) as gw,
    ):
        ping = await client.post(f"{gw}/rtbs.json?{PING}")
        odd = await client.post(f"{gw}/rtbs.json?{PING[:-1]}7&odd=1")
        write = await client.post(f"{gw}/data_writing?{PING}&odd=1")
        lookup = await client.get(f"{gw}/calls.json?api_key=k")
        seen = len(upstream.seen)
    for refused in (ping, odd, write, lookup):
        assert refused.status_code == 502
        body = refused.json()
        assert body["error"] == "bad_gateway"
        assert "100-599" in body["message"]
    assert seen == 4  # each reached the upstream once
