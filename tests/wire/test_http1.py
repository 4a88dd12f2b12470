"""The lean HTTP/1.1 client against real sockets: what it sends, reads, reuses and drops.

Each test's upstream is a few lines of asyncio on 127.0.0.1 that answer exactly the bytes
the test needs (HTTP/1.0 bodies delimited by the close, gzip, a 100 Continue, garbage, a
second answer nobody asked for), so every rule of the client is seen crossing a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.wire.answer import AnswerTooLarge
from gateway.wire.http1 import (
    BrokenBody,
    ClosedEarly,
    ConnectFailed,
    HttpFailure,
    Malformed,
    Origin,
    Pool,
    RawAnswer,
    Reset,
    TlsFailed,
    Unreadable,
    _keepalive_timeout,
    request_bytes,
)

Handler = Callable[["Upstream", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LIMIT = 10_000


class Upstream:
    """Counts connections and keeps each request's head and body, as received."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.requests: list[tuple[list[str], bytes]] = []
        self.arrived = asyncio.Event()
        self.url = ""

    async def read(self, reader: asyncio.StreamReader) -> tuple[list[str], bytes]:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        lines = head.split("\r\n")[:-2]
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        body = await reader.readexactly(length) if length else b""
        self.requests.append((lines, body))
        self.arrived.set()
        return lines, body

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, OSError):
            await self.handler(self, reader, writer)
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        for writer in self.writers:
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def upstream(
    handler: Handler, *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Upstream]:
    up = Upstream(handler)
    server = await asyncio.start_server(up._serve, "127.0.0.1", 0, ssl=tls)
    scheme = "https" if tls is not None else "http"
    up.url = f"{scheme}://localhost:{server.sockets[0].getsockname()[1]}"
    try:
        yield up
    finally:
        server.close()
        await up.close()
        await server.wait_closed()


def answer(body: bytes = b'{"ok":true}', *extra: bytes, status: bytes = b"200 OK") -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
    return (
        head
        + b"".join(h + b"\r\n" for h in extra)
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


def keep_answering(reply: bytes = answer()) -> Handler:
    async def handle(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            await up.read(reader)
            w.write(reply)
            await w.drain()

    return handle


def once(reply: bytes, *, then_close: bool = True) -> Handler:
    async def handle(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await up.read(reader)
        w.write(reply)
        await w.drain()
        if not then_close:
            await reader.read()  # until the client hangs up

    return handle


def pool_for(up: Upstream, **kwargs: object) -> Pool:
    kwargs.setdefault("max_connections", 8)
    return Pool(Origin(up.url + "/v1", "rtb-gateway/test"), **kwargs)  # type: ignore[arg-type]


def ping(pool: Pool, body: bytes = b'{"caller_number":"+12125550123"}') -> bytes:
    return request_bytes(pool.origin, "POST", "/rtbs.json", body)


async def twice(handler: Handler) -> tuple[RawAnswer, RawAnswer, int]:
    """Two pings in a row on one pool: both answers, and how many connections they took."""
    async with upstream(handler) as up:
        pool = pool_for(up)
        first = await pool.send(ping(pool), LIMIT)
        second = await pool.send(ping(pool), LIMIT)
        await pool.close()
    return first, second, up.connections


async def failed(handler: Handler) -> tuple[HttpFailure, Upstream]:
    """One ping on a new pool that must fail: the failure, and the upstream it reached."""
    async with upstream(handler) as up:
        pool = pool_for(up)
        with pytest.raises(HttpFailure) as caught:
            await pool.send(ping(pool), LIMIT)
        await pool.close()
    return caught.value, up


async def test_a_request_is_the_head_the_upstream_expects_then_the_body() -> None:
    async with upstream(keep_answering()) as up:
        pool = pool_for(up)
        got = await pool.send(ping(pool), LIMIT)
        await pool.send(request_bytes(pool.origin, "PUT", "/rtbs/abc.json", None), LIMIT)
        await pool.send(request_bytes(pool.origin, "GET", "/data_writing?x=1", None), LIMIT)
        await pool.close()
    port = up.url.rsplit(":", 1)[1]
    (post, body), (put, empty), (get, _) = up.requests
    assert got.status == 200
    assert got.body == b'{"ok":true}'
    assert got.content_type == "application/json"
    assert post == [
        "POST /v1/rtbs.json HTTP/1.1",
        f"Host: localhost:{port}",
        "User-Agent: rtb-gateway/test",
        "Content-Type: application/json",
        "Accept: application/json",
        f"Content-Length: {len(body)}",
    ]
    assert body == b'{"caller_number":"+12125550123"}'
    assert put[0] == "PUT /v1/rtbs/abc.json HTTP/1.1"
    assert "Content-Length: 0" in put
    assert empty == b""
    assert get[0] == "GET /v1/data_writing?x=1 HTTP/1.1"
    assert not any(line.startswith("Content-Length") for line in get)


def test_an_origin_on_its_default_port_names_no_port_and_credentials_become_basic_auth() -> None:
    origin = Origin("https://user:pa%3Ass@rtb.example.com:443/", "ua")
    head = origin.head("POST", "/rtbs.json", b"").decode()
    assert head.startswith("POST /rtbs.json HTTP/1.1\r\nHost: rtb.example.com\r\n")
    assert "Authorization: Basic dXNlcjpwYSUzQXNz\r\n" in head
    assert (origin.host, origin.port, origin.tls) == ("rtb.example.com", 443, True)


async def test_sequential_requests_reuse_one_connection() -> None:
    async with upstream(keep_answering()) as up:
        pool = pool_for(up)
        answers = [await pool.send(ping(pool), LIMIT) for _ in range(20)]
        await pool.close()
    assert [a.status for a in answers] == [200] * 20
    assert up.connections == 1


async def test_concurrent_requests_wait_for_the_cap_and_all_get_answers() -> None:
    pending = 0
    all_three = asyncio.Event()

    async def handle(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal pending
        while True:
            await up.read(reader)
            pending += 1
            if pending >= 3:
                all_three.set()
            await all_three.wait()  # no answer until the cap's worth are in flight
            w.write(answer())
            await w.drain()

    async with upstream(handle) as up:
        pool = pool_for(up, max_connections=3)
        answers = await asyncio.gather(*(pool.send(ping(pool), LIMIT) for _ in range(20)))
        in_use = pool.in_use
        await pool.close()
    assert [a.status for a in answers] == [200] * 20
    assert up.connections == 3
    assert in_use == 0


async def test_a_chunked_answer_is_joined() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"a":\r\n3\r\n"b"\r\n1\r\n}\r\n0\r\n\r\n'
    )
    first, second, connections = await twice(keep_answering(chunked))
    assert first.body == second.body == b'{"a":"b"}'
    assert connections == 1


@pytest.mark.parametrize(
    ("encoding", "squeeze"),
    [
        (b"gzip", gzip.compress),
        (b"deflate", zlib.compress),
        (b"deflate", lambda b: zlib.compress(b, wbits=-15)),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw"],
)
async def test_compressed_answers_are_decoded(
    encoding: bytes, squeeze: Callable[[bytes], bytes]
) -> None:
    body = b'{"status":"accepted","payout":12.5}'
    reply = answer(squeeze(body), b"Content-Encoding: " + encoding)
    async with upstream(keep_answering(reply)) as up:
        pool = pool_for(up)
        got = await pool.send(ping(pool), LIMIT)
        await pool.close()
    assert got.body == body


async def test_an_answer_that_expands_past_the_limit_is_too_large_and_not_pooled() -> None:
    bomb = answer(gzip.compress(b"0" * 200_000), b"Content-Encoding: gzip")
    replies = iter([bomb, answer()])

    async def handle(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            await up.read(reader)
            w.write(next(replies))
            await w.drain()

    async with upstream(handle) as up:
        pool = pool_for(up)
        with pytest.raises(AnswerTooLarge):
            await pool.send(ping(pool), LIMIT)
        after = await pool.send(ping(pool), LIMIT)
        await pool.close()
    assert after.status == 200
    assert up.connections == 2


async def test_an_encoding_it_cannot_read_is_refused() -> None:
    failure, _ = await failed(keep_answering(answer(b"\x1b\x00", b"Content-Encoding: br")))
    assert isinstance(failure, Unreadable)
    assert failure.words == "answer in a Content-Encoding the gateway cannot read"


async def test_a_body_delimited_by_the_close_is_read_to_its_end_and_not_reused() -> None:
    http10 = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    first, second, connections = await twice(once(http10))
    assert first.body == second.body == b"all of it"
    assert first.content_type == "text/plain"
    assert connections == 2


async def test_connection_close_in_an_answer_is_honoured() -> None:
    reply = answer(b"{}", b"Connection: close")
    _, _, connections = await twice(once(reply, then_close=False))
    assert connections == 2


async def test_an_unasked_second_answer_drops_the_connection() -> None:
    first, second, connections = await twice(keep_answering(answer() + answer(b'{"smuggled":1}')))
    assert first.body == second.body == b'{"ok":true}'
    assert connections == 2


async def test_an_interim_100_continue_is_skipped() -> None:
    reply = b"HTTP/1.1 100 Continue\r\n\r\n" + answer(status=b"201 Created")
    got, again, connections = await twice(keep_answering(reply))
    assert (got.status, again.status) == (201, 201)
    assert connections == 1


async def test_garbage_is_a_malformed_response() -> None:
    failure, _ = await failed(once(b"HTTX/9 what\r\n\r\n", then_close=False))
    assert isinstance(failure, Malformed)
    assert failure.words == "malformed response"


async def test_a_close_before_any_answer_and_a_short_body_say_which() -> None:
    short = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial'
    async with upstream(once(b"")) as silent, upstream(once(short)) as cut:
        early, broken = pool_for(silent), pool_for(cut)
        with pytest.raises(ClosedEarly):
            await early.send(ping(early), LIMIT)
        with pytest.raises(BrokenBody):
            await broken.send(ping(broken), LIMIT)
        await early.close()
        await broken.close()


async def test_a_reset_is_a_reset() -> None:
    async def reset(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await up.read(reader)
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()

    failure, up = await failed(reset)
    # A reset read as a plain close is acceptable; either way one request, no retry.
    assert isinstance(failure, Reset | ClosedEarly)
    assert failure.words in ("connection reset", "connection closed before an answer")
    assert len(up.requests) == 1


async def test_a_cancelled_exchange_drops_its_connection() -> None:
    hung_up = asyncio.Event()

    async def handle(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await up.read(reader)
        if len(up.requests) == 1:
            await reader.read()  # never answers the first; sees the client hang up
            hung_up.set()
            return
        w.write(answer())
        await w.drain()
        await reader.read()

    async with upstream(handle) as up:
        pool = pool_for(up)
        first = asyncio.create_task(pool.send(ping(pool), LIMIT))
        await up.arrived.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await hung_up.wait()
        after = await pool.send(ping(pool), LIMIT)
        await pool.close()
    assert after.status == 200
    assert up.connections == 2
    assert pool.in_use == 0


async def test_stale_idle_connections_are_not_handed_out() -> None:
    async with upstream(keep_answering()) as up:
        pool = pool_for(up, keepalive_s=-1.0)  # every idle connection is already stale
        for _ in range(3):
            await pool.send(ping(pool), LIMIT)
        await pool.close()
    assert up.connections == 3


async def test_nothing_listening_is_connect_failed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pool = Pool(Origin(f"http://127.0.0.1:{port}", "ua"), max_connections=2)
    with pytest.raises(ConnectFailed) as caught:
        await pool.send(request_bytes(pool.origin, "POST", "/rtbs.json", b"{}"), LIMIT)
    await pool.close()
    assert caught.value.words == "connection refused or unreachable"
    assert pool.in_use == 0


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_verifies_the_upstream_and_keeps_the_connection(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with upstream(keep_answering(), tls=served) as up:
        pool = pool_for(up, ssl_context=trusting)
        answers = [await pool.send(ping(pool), LIMIT) for _ in range(3)]
        await pool.close()
        untrusting = pool_for(up)
        with pytest.raises(TlsFailed):  # the system's CAs do not know this certificate
            await untrusting.send(ping(untrusting), LIMIT)
        await untrusting.close()
    assert [a.status for a in answers] == [200] * 3
    assert up.connections == 1  # one for three answers; the refused handshake never got in


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (b"timeout=5, max=1000", 5.0),
        (b"max=100, timeout=7", 7.0),
        (b"Timeout = 3", 3.0),
        (b"max=100", None),
        (b"xtimeout=9", None),
    ],
)
def test_the_peers_keep_alive_timeout_is_read(header: bytes, seconds: float | None) -> None:
    assert _keepalive_timeout(header) == seconds


@pytest.mark.parametrize(("timeout", "connections"), [(b"1", 2), (b"600", 1)])
async def test_a_connection_retires_before_the_peers_keep_alive_timeout(
    timeout: bytes, connections: int
) -> None:
    """``timeout=1`` leaves no safe idle time (a second's margin): the next ping gets a new
    connection; ``timeout=600`` is longer than our own 30 s, which then rules."""
    reply = answer(b"{}", b"Keep-Alive: timeout=" + timeout + b", max=1000")
    _, _, opened = await twice(keep_answering(reply))
    assert opened == connections
