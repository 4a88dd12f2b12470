"""The Core API client on the wire: what it sends, and the words of each failure.

Real sockets on 127.0.0.1: a tiny asyncio server per case that answers exactly the bytes
a case needs (a cookie, a broken head, a body cut short), and the raw upstream for
refused, closed, reset and hung connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.coreapi.client import CoreApiClient, Upstream
from gateway.errors import BadGateway, UpstreamTimeout
from tests.support.ports import free_port
from tests.support.raw_upstream import raw_upstream
from tests.support.scripted_upstream import Reply, Seen, scripted_upstream

Answer = Callable[[bytes], bytes]


@contextlib.asynccontextmanager
async def byte_upstream(answer: Answer) -> AsyncIterator[tuple[str, list[bytes]]]:
    """Answers each request head with ``answer(head)`` (and hangs up after one that says
    ``Connection: close``); records the heads."""
    heads: list[bytes] = []
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head)
                reply = answer(head)
                writer.write(reply)
                await writer.drain()
                if b"Connection: close" in reply:
                    break
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await serve(reader, writer)
        finally:
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", heads
    finally:
        server.close()
        # The client hung up first; let each handler see it and close its side.
        if handlers:
            await asyncio.wait_for(asyncio.gather(*handlers, return_exceptions=True), 5)


@contextlib.asynccontextmanager
async def started(url: str, **options: float) -> AsyncIterator[CoreApiClient]:
    client = CoreApiClient(url, url, **options)  # type: ignore[arg-type]
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def bad_gateway_words(url: str) -> str:
    async with started(url, timeout_s=5) as client:
        with pytest.raises(BadGateway) as caught:
            await client.get(Upstream.V1, "/company.json", b"api_key=secret")
    message = caught.value.message
    assert "secret" not in message
    return message.removeprefix("the core_api upstream failed: ")


async def test_no_cookie_is_kept_and_nothing_compressed_is_asked_for() -> None:
    def answer(_head: bytes) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nSet-Cookie: session=company-a; Path=/\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        )

    async with byte_upstream(answer) as (url, heads), started(url) as client:
        first = await client.get(Upstream.V1, "/company.json", b"api_key=a")
        second = await client.get(Upstream.V1, "/company.json", b"api_key=b")
    assert (first.status, second.status) == (200, 200)
    assert len(heads) == 2
    for head in heads:
        lower = head.lower()
        assert b"cookie:" not in lower
        assert b"accept-encoding" not in lower
        assert b"user-agent: rtb-gateway" in lower
    assert heads[1].startswith(b"GET /company.json?api_key=b HTTP/1.1\r\n")


async def test_link_lines_travel_on_as_one_and_retry_after_keeps_the_first() -> None:
    def answer(_head: bytes) -> bytes:
        return (
            b'HTTP/1.1 200 OK\r\nLink: <http://up/c?page=2>; rel="next"\r\n'
            b'Link: <http://up/c?page=9>; rel="last"\r\nRetry-After: 3\r\n'
            b"Retry-After: 7\r\nContent-Length: 2\r\n\r\n[]"
        )

    async with byte_upstream(answer) as (url, _heads), started(url) as client:
        got = await client.get(Upstream.V1, "/calls.json", b"api_key=a")
    assert dict(got.headers) == {
        "Link": '<http://up/c?page=2>; rel="next", <http://up/c?page=9>; rel="last"',
        "Retry-After": "3",
    }


async def test_a_refused_connection_is_named() -> None:
    words = await bad_gateway_words(f"http://127.0.0.1:{free_port()}")
    assert words == "connection refused or unreachable"


async def test_a_connection_closed_before_the_answer_is_named() -> None:
    async with raw_upstream("close") as (url, _upstream):
        words = await bad_gateway_words(url)
    assert words == "connection closed before an answer"


async def test_a_reset_connection_is_named() -> None:
    async with raw_upstream("reset") as (url, _upstream):
        words = await bad_gateway_words(url)
    # The RST may land while the request is still being written or while waiting.
    assert words in ("connection reset", "connection closed before an answer")


async def test_an_answer_that_is_not_http_is_named() -> None:
    async with byte_upstream(lambda _h: b"SSH-2.0-OpenSSH\r\n\r\nConnection: close") as (
        url,
        _heads,
    ):
        words = await bad_gateway_words(url)
    assert words == "malformed response"


async def test_a_body_cut_short_is_named() -> None:
    def answer(_head: bytes) -> bytes:
        return b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{"calls":'

    async with byte_upstream(answer) as (url, _heads):
        words = await bad_gateway_words(url)
    assert words == "broken response body"


async def test_a_hung_upstream_is_a_timeout() -> None:
    async with raw_upstream("hang") as (url, upstream), started(url, timeout_s=0.3) as client:
        with pytest.raises(UpstreamTimeout):
            await client.get(Upstream.V1, "/company.json", b"api_key=a")
        assert upstream.requests == 1


async def test_an_answer_over_the_limit_drops_its_connection_and_a_fitting_one_keeps_it() -> None:
    big = b"[" + b"0," * 100_000 + b"0]"

    def answer(seen: Seen) -> Reply:
        if "big" in seen.target:
            return Reply(body=big, chunked="chunked" in seen.target)
        return Reply(body=b"{}")

    async with (
        scripted_upstream(answer) as upstream,
        started(upstream.url, max_answer_bytes=50_000) as client,
    ):
        for _ in range(2):
            assert (await client.get(Upstream.V1, "/calls.json", b"api_key=a")).status == 200
        assert upstream.connections == 1  # kept alive and reused
        for query in (b"api_key=a&big=1", b"api_key=a&big=1&chunked=1"):
            with pytest.raises(BadGateway, match="GATEWAY_CORE_API_MAX_ANSWER_BYTES"):
                await client.get(Upstream.V1, "/calls.json", query)
            # The refused answer's connection was closed unread, not pooled: the next
            # lookup needs a new one.
            before = upstream.connections
            assert (await client.get(Upstream.V1, "/calls.json", b"api_key=a")).status == 200
            assert upstream.connections == before + 1
