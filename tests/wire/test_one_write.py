"""Answers written as one head-plus-body write still behave as HTTP/1.1 says, over sockets.

The guarded protocol holds each response head until its body is written. These check the
cases where holding could go wrong: a 100 Continue must not wait for the answer, a HEAD
answer has no body to carry its head, a streamed answer sends its head with the first
chunk, an empty body (204) still releases the head, and an app that dies after its head
still gets the head out before the connection closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.wire.guarded import serve_guarded

# The event the streamed answer waits on, made anew by each test: an asyncio.Event binds
# to the loop that first waits on it, and the tests run on asyncio and on uvloop.
released: dict[str, asyncio.Event] = {}


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/json")


async def stream(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first,"
        await released["event"].wait()  # the client read the first chunk: the head went with it
        yield b"second"

    return StreamingResponse(chunks(), media_type="text/plain")


async def empty(request: Request) -> Response:
    return Response(status_code=204)


async def hello(request: Request) -> Response:
    return Response(b"hello", media_type="text/plain")


class DiesAfterHead:
    """A raw ASGI app (Starlette calls a class instance as one, not as an endpoint)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("after the head")


APP = Starlette(
    routes=[
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        Route("/empty", empty),
        Route("/hello", hello),
        Route("/dies", DiesAfterHead()),
    ]
)


async def head_of(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)


async def test_100_continue_goes_out_before_the_body_is_sent() -> None:
    async with serve_guarded(APP) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n"
        )
        interim = await head_of(reader)  # no body sent yet: this must not wait for one
        writer.write(b'{"a":1}')
        final = await head_of(reader)
        body = await asyncio.wait_for(reader.readexactly(7), 10)
        writer.close()
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert final.startswith(b"HTTP/1.1 200 OK")
    assert body == b'{"a":1}'


async def test_a_head_request_gets_its_head_and_the_connection_stays_usable() -> None:
    async with serve_guarded(APP) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        first = await head_of(reader)
        second = await head_of(reader)
        body = await asyncio.wait_for(reader.readexactly(5), 10)
        writer.close()
    assert first.startswith(b"HTTP/1.1 200 OK")
    assert b"content-length: 5" in first.lower()
    assert second.startswith(b"HTTP/1.1 200 OK")
    assert body == b"hello"


async def test_a_streamed_answer_sends_its_head_with_the_first_chunk() -> None:
    released["event"] = asyncio.Event()
    async with serve_guarded(APP) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await head_of(reader)
        first = await asyncio.wait_for(reader.readuntil(b"first,\r\n"), 10)
        released["event"].set()
        rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 10)
        writer.close()
    assert b"transfer-encoding: chunked" in head.lower()
    assert first.endswith(b"first,\r\n")
    assert b"second" in rest


async def test_an_empty_answer_still_releases_its_head() -> None:
    async with serve_guarded(APP) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        first = await head_of(reader)
        second = await head_of(reader)
        writer.close()
    assert first.startswith(b"HTTP/1.1 204 No Content")
    assert second.startswith(b"HTTP/1.1 200 OK")


async def test_an_app_that_dies_after_its_head_still_sends_the_head_then_closes() -> None:
    async with serve_guarded(APP) as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /dies HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await head_of(reader)
        rest = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert rest == b""  # closed: the answer could not be finished
