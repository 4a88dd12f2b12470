"""A lean HTTP/1.1 client for the RTB origins: pooled keep-alive, one write per request.

Why not aiohttp (which this replaced for the RTB and data-writing origins): a forward is a
few hundred bytes out and in on a connection that is almost always already open, and
aiohttp spent ~35% of the gateway's CPU per forwarded ping building and tearing down its
general machinery (request and response objects, header multidicts, payload registry,
stream readers, timers). Here a request is a pre-built head plus the body, written with
one ``transport.write``; the answer is parsed by httptools (llhttp, the parser uvicorn
uses for our own server side) straight into a status, the few headers we read and the
body bytes. See ``docs/pages/performance.md`` for what it bought.

What it keeps of a careful client:

- **One pool per origin**, connections reused most-recent-first (the warmest socket is
  the least likely to have been closed by the peer), idle ones dropped after
  ``keepalive_s`` or a second before the peer's own ``Keep-Alive: timeout``, at most
  ``max_connections`` open or opening (callers beyond it wait, under their own deadline).
- **No retries, ever.** A connection whose exchange did not end cleanly (timeout,
  cancellation, a reset, a parse error, an answer over the limit) is aborted, never
  pooled: an unread rest must not be mistaken for the next answer.
- **Bounded answers**: over ``limit`` by ``Content-Length`` (before any body is read) or
  while reading a chunked or close-delimited body, the connection is dropped and
  :class:`~gateway.wire.answer.AnswerTooLarge` raised. gzip and deflate bodies are
  decoded with the same bound on what they expand to.
- **Failures as words**: every way an exchange can fail is one of the :class:`HttpFailure`
  kinds below, each carrying the words of the 502 it becomes. None holds a URL.
- Deadlines are the caller's (``asyncio.timeout`` around the call); nothing here arms a
  timer of its own.

Library versions: httptools' ``HttpResponseParser`` (public, but 0.x).
``tests/wire/test_http1.py`` covers httptools 0.6.0 (floor) to 0.9.0 (lock and
newest, ``.ci/latest`` 2026-12-04); pyproject.toml allows ``>=0.6,<1``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
import ssl
import time
import zlib
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

from gateway.wire.answer import STATUS_OUTSIDE_RANGE, AnswerTooLarge, valid_status

DEFAULT_KEEPALIVE_S = 30.0
KEEPALIVE_MARGIN_S = 1.0
_KEEPALIVE_TIMEOUT = re.compile(rb"(?:^|[,;\s])timeout\s*=\s*(\d{1,9})", re.IGNORECASE)


def _keepalive_timeout(value: bytes) -> float | None:
    """``timeout=N`` of a ``Keep-Alive`` header, in seconds (None when absent)."""
    match = _KEEPALIVE_TIMEOUT.search(value)
    return float(match.group(1)) if match else None


class HttpFailure(Exception):
    """The exchange failed; ``words`` say how, fit for a client's 502 body."""

    words = "malformed response"


class ConnectFailed(HttpFailure):
    words = "connection refused or unreachable"


class TlsFailed(HttpFailure):
    words = "TLS handshake failed"


class ClosedEarly(HttpFailure):
    words = "connection closed before an answer"


class Reset(HttpFailure):
    words = "connection reset"


class BrokenBody(HttpFailure):
    words = "broken response body"


class Malformed(HttpFailure):
    words = "malformed response"


class Unreadable(HttpFailure):
    words = "answer in a Content-Encoding the gateway cannot read"


class BadStatus(HttpFailure):
    """A status llhttp accepts (any three digits) that HTTP does not: 000-099, 600-999.

    Passed on, uvicorn cannot write it (no answer at all, a traceback per request)."""

    words = STATUS_OUTSIDE_RANGE


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """Status, decoded body and the raw ``Content-Type`` (None when the upstream sent none)."""

    status: int
    body: bytes
    content_type: str | None


class Origin:
    """Where requests go and the head lines every request to it carries, built once."""

    def __init__(self, url: str, user_agent: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an origin is an http:// or https:// URL with a host")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        authority = parts.netloc.rpartition("@")[2]
        default_port = (self.tls and self.port == 443) or (not self.tls and self.port == 80)
        if default_port and parts.port is not None:
            authority = authority.rsplit(":", 1)[0]
        lines = [f"Host: {authority}", f"User-Agent: {user_agent}"]
        if parts.username is not None:
            pair = f"{parts.username}:{parts.password or ''}".encode()
            lines.append("Authorization: Basic " + base64.b64encode(pair).decode("ascii"))
        self.common = ("\r\n".join(lines) + "\r\n").encode("latin-1")

    def head(self, method: str, path: str, headers: bytes) -> bytes:
        """``method path`` plus the common and given header lines, up to (not incl.) the end."""
        return f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode() + self.common + headers


_JSON_BODY = b"Content-Type: application/json\r\nAccept: application/json\r\n"
_ACCEPT_JSON = b"Accept: application/json\r\n"
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))


def request_bytes(origin: Origin, method: str, path: str, body: bytes | None) -> bytes:
    """One whole request: head and body, ready for a single write."""
    if body is None:
        extra = b"Content-Length: 0\r\n" if method in _BODY_METHODS else b""
        return origin.head(method, path, _ACCEPT_JSON + extra) + b"\r\n"
    return json_head(origin, method, path) + content_length(body) + body


def json_head(origin: Origin, method: str, path: str) -> bytes:
    """The head of a JSON request up to its ``Content-Length``: built once for a hot route."""
    return origin.head(method, path, _JSON_BODY)


def content_length(body: bytes) -> bytes:
    """The last head line and the blank line that ends the head."""
    return b"Content-Length: %d\r\n\r\n" % len(body)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one exchange at a time (no pipelining)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reuse_until = 0.0  # on the monotonic clock: not handed out from then on
        self.keepalive_hint: float | None = None  # the peer's ``Keep-Alive: timeout=N``
        self.lost: asyncio.Future[None] = pool.loop.create_future()
        self._waiter: asyncio.Future[RawAnswer] | None = None
        self._limit = 0
        self._status = 0
        self._chunks: list[bytes] = []
        self._size = 0
        self._content_type: str | None = None
        self._encoding: str | None = None
        self._length: int | None = None
        self._chunked = False
        self._headers_done = False
        self._keep_alive = False

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Bytes nobody asked for: whatever the peer thinks it is answering, the next
            # request must not read it as its own answer.
            self.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(Malformed())
        except httptools.HttpParserError:
            self._fail(Malformed())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool.forget(self)
        if not self.lost.done():
            self.lost.set_result(None)
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and self._length is None and not self._chunked and exc is None:
            self._complete()  # a body delimited by the close, now whole
        elif isinstance(exc, ConnectionResetError):
            waiter.set_exception(Reset())
        elif self._headers_done:
            waiter.set_exception(BrokenBody())
        else:
            waiter.set_exception(ClosedEarly())

    # -- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # A second answer behind the first, unasked: the peer and we disagree about
            # the exchange, so the connection goes (never back to the pool).
            self.abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-type":
            # As aiohttp read it: bytes that are not UTF-8 survive as surrogates, so the
            # deliverable() check downstream still sees that they are not sendable.
            self._content_type = value.decode("utf-8", "surrogateescape")
        elif lowered == b"content-length":
            self._length = int(value)  # llhttp has already refused a malformed one
        elif lowered == b"keep-alive":
            self.keepalive_hint = _keepalive_timeout(value)
        elif lowered == b"content-encoding":
            self._encoding = value.decode("latin-1").strip().lower()
        elif lowered == b"transfer-encoding":
            self._chunked = b"chunked" in value.lower()

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            return  # an interim answer (100 Continue): the real one follows
        if not valid_status(status):
            self._fail(BadStatus())
            return
        self._status = status
        self._headers_done = True
        self._keep_alive = self._parser.should_keep_alive()
        if self._length is not None and self._length > self._limit:
            self._fail(AnswerTooLarge(self._limit))

    def on_body(self, body: bytes) -> None:
        if self.closed:
            return  # the rest of a refused answer, still in this read's buffer
        self._size += len(body)
        if self._size > self._limit:
            self._fail(AnswerTooLarge(self._limit))
            return
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if not self._headers_done:
            self._reset_headers()  # the end of an interim answer
            return
        self._complete()

    # -- exchange -------------------------------------------------------------------------

    async def exchange(self, data: bytes, limit: int) -> tuple[RawAnswer, bool]:
        """Send one request; the answer, and whether the connection may be reused."""
        assert self.transport is not None
        self._limit = limit
        self._status = 0
        self._chunks = []
        self._size = 0
        self._reset_headers()
        waiter = self._pool.loop.create_future()
        self._waiter = waiter
        try:
            self.transport.write(data)
            answer = await waiter
        finally:
            self._waiter = None
        return answer, self._keep_alive and not self.closed

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _reset_headers(self) -> None:
        self._content_type = None
        self._encoding = None
        self._length = None
        self._chunked = False
        self._headers_done = False
        self._keep_alive = False

    def _complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if self._encoding not in (None, "identity", ""):
            try:
                body = _decode(body, self._encoding, self._limit)
            except (AnswerTooLarge, HttpFailure) as exc:
                self._keep_alive = False
                waiter.set_exception(exc)
                return
        waiter.set_result(RawAnswer(self._status, body, self._content_type))

    def _fail(self, exc: Exception) -> None:
        # close(), never reuse: the unread rest must not reach the next exchange.
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()


def _decode(body: bytes, encoding: str, limit: int) -> bytes:
    """gzip or deflate, expanded to at most ``limit`` bytes."""
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        # RFC 9110's deflate is the zlib format; some servers send raw deflate instead.
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        raise Unreadable()
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise BrokenBody() from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise AnswerTooLarge(limit)
    return out


class Pool:
    """Keep-alive connections to one origin, and the cap on how many may be open."""

    def __init__(
        self,
        origin: Origin,
        *,
        max_connections: int,
        keepalive_s: float = DEFAULT_KEEPALIVE_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self._max = max_connections
        self._keepalive_s = keepalive_s
        self._ssl = ssl_context if ssl_context is not None else _default_tls(origin)
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self._slots: deque[asyncio.Future[None]] = deque()
        self.in_use = 0
        self._closed = False

    async def send(self, data: bytes, limit: int) -> RawAnswer:
        """One exchange on a pooled (or new) connection; never retried."""
        if self.in_use >= self._max:
            await self._wait_for_slot()
        self.in_use += 1
        conn: _Connection | None = None
        reusable = False
        try:
            conn = self._checkout()
            if conn is None:
                conn = await self._connect()
            answer, reusable = await conn.exchange(data, limit)
            return answer
        finally:
            if conn is not None:
                if reusable and not self._closed:
                    conn.reuse_until = time.monotonic() + self._idle_limit(conn)
                    self._idle.append(conn)
                else:
                    conn.abort()
            self.in_use -= 1
            self._wake_one()

    def forget(self, conn: _Connection) -> None:
        """A connection closed (by either side): it must never be handed out again."""
        self._open.discard(conn)
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)

    async def close(self) -> None:
        """Close every connection and wait (briefly) until their sockets are gone."""
        self._closed = True
        self._idle = []
        closing = list(self._open)
        for conn in closing:
            conn.abort()
        if closing:
            await asyncio.wait([conn.lost for conn in closing], timeout=1.0)

    def _checkout(self) -> _Connection | None:
        idle = self._idle
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now < conn.reuse_until:
                return conn
            conn.abort()
        return None

    def _idle_limit(self, conn: _Connection) -> float:
        """How long ``conn`` may sit idle: ours, or less when the peer said it closes sooner.

        A peer that announces ``Keep-Alive: timeout=5`` (Node's default) closes an idle
        connection after 5 s; a ping written onto it as it closes is lost without an
        answer, and a POST is never retried. So such a connection retires a second early.
        """
        hint = conn.keepalive_hint
        if hint is None:
            return self._keepalive_s
        return min(self._keepalive_s, hint - KEEPALIVE_MARGIN_S)

    async def _connect(self) -> _Connection:
        origin = self.origin
        try:
            _, conn = await self.loop.create_connection(
                lambda: _Connection(self),
                origin.host,
                origin.port,
                ssl=self._ssl,
                server_hostname=origin.host if self._ssl is not None else None,
            )
        except ssl.SSLError:
            raise TlsFailed() from None
        except OSError:
            raise ConnectFailed() from None
        self._open.add(conn)
        return conn

    async def _wait_for_slot(self) -> None:
        while self.in_use >= self._max:
            slot = self.loop.create_future()
            self._slots.append(slot)
            try:
                await slot
            except asyncio.CancelledError:
                if slot.done() and not slot.cancelled():
                    self._wake_one()  # pass the slot we were given on
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._slots.remove(slot)

    def _wake_one(self) -> None:
        for slot in self._slots:
            if not slot.done():
                slot.set_result(None)
                return


def _default_tls(origin: Origin) -> ssl.SSLContext | None:
    return ssl.create_default_context() if origin.tls else None
