"""Per-connection guards uvicorn's httptools protocol does not have: head size and slow clients.

Measured on uvicorn 0.54 + httptools 0.9 (tests/wire/test_protocol.py shows each):

- **No limit on the request head.** uvicorn appends every header the parser hands it, and
  llhttp has no size cap of its own, so one connection can make a worker buffer headers
  until memory runs out. (uvicorn's ``h11_max_incomplete_event_size`` applies only to the
  h11 protocol, which the gateway does not use.)
- **No timeout before a request completes.** ``timeout_keep_alive`` is armed only after
  a response; a connection that sends nothing, or trickles a header byte every few
  seconds (slowloris), is kept forever, holding a file descriptor and a protocol object.

:class:`GuardedHttpToolsProtocol` adds both, with the same JSON error shape as the app:

- request line + headers over ``max_head_bytes`` -> ``431 headers_too_large`` (``414
  uri_too_long`` when the URL alone is over), connection closed;
- a request whose head and body have not fully arrived ``request_timeout_s`` after the
  connection opened or after its first byte -> ``408 request_timeout`` (when nothing
  has been answered yet) and the connection closed; an app already waiting for the body
  sees the client disconnect;
- more than ``max_connections`` open connections -> the new one gets ``503 overloaded``
  and is closed at once, so descriptors stay for clients that send requests; except
  that ``PROBE_RESERVE`` more are kept for health probes: such a connection must send
  its head within ``PROBE_HEAD_S``, may only ask for ``/healthz`` or ``/readyz`` (else
  the same 503) and is closed after the answer, so whoever holds the cap's idle
  connections cannot get the pod restarted by its liveness probe;
- a client that stops reading its answers (the write buffer stays over its high-water
  mark) for ``request_timeout_s`` is reset, and at most ``PIPELINE_MAX`` of its
  pipelined requests are parsed ahead of their answers;
- the parser's own refusals (malformed HTTP) answer ``400 bad_request`` as JSON;
- an ``Upgrade`` other than a WebSocket (``h2c``: ``curl --http2``) is ignored, as HTTP/1.1
  allows: the request and its body are served as HTTP/1.1 and the connection stays usable.

A small ``POST /rtbs.json`` waits for its body before its ASGI task starts, and the app's
hit lane (gateway/ping/hit_lane.py) answers it from here when the shield holds its answer
in memory: the same bytes, metrics, logs and ledger event, without the task, the scope's
round through the middleware or uvicorn's response cycle. Anything else it leaves to the
task, started as uvicorn would have; the limits above apply before the lane is asked.

It also sends what one loop iteration wrote to a connection in one ``transport.write``
at the start of the next (:class:`_Coalesced`): an answer's head and body in one segment,
and the answers of one iteration back to back.

The limits are class attributes set once per process by :func:`configure` (from
``server.py``, before serving; every ``--workers`` process does the same), because
uvicorn constructs protocols itself.

Library versions: subclasses uvicorn's ``HttpToolsProtocol`` and calls its private
helpers (``_unset_keepalive_if_required``, ``_should_upgrade``,
``_unsupported_upgrade_warning``, ``cycle``). ``tests/wire/test_protocol.py``,
``test_one_write.py`` and ``test_coalesced.py`` cover uvicorn 0.51.0 (floor) to 0.55.0
(``.ci/latest``, 2026-12-04; the lock has 0.54.0) and httptools 0.6.0 to 0.9.0;
pyproject.toml allows uvicorn ``>=0.51,<0.56`` and httptools ``>=0.6,<1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable, Iterable
from typing import Any

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from gateway.errors import (
    BadRequest,
    HeadersTooLarge,
    Overloaded,
    RequestTimeout,
    UriTooLong,
    http_bytes,
    prerender,
)

log = logging.getLogger("gateway")

_ANSWERS = {
    "bad_request": http_bytes(
        prerender(BadRequest, "the request is not valid HTTP/1.1"), "Bad Request"
    ),
    "uri_too_long": http_bytes(
        prerender(UriTooLong, "the request line is too long"), "URI Too Long"
    ),
    "headers_too_large": http_bytes(prerender(HeadersTooLarge), "Request Header Fields Too Large"),
    "request_timeout": http_bytes(prerender(RequestTimeout), "Request Timeout"),
    "too_many_connections": http_bytes(
        prerender(Overloaded, "too many open connections; retry shortly"), "Service Unavailable"
    ),
    "upgrade_with_chunked_body": http_bytes(
        prerender(
            BadRequest,
            "an Upgrade request with a chunked body is not supported; "
            "send Content-Length, or no Upgrade",
        ),
        "Bad Request",
    ),
}


# Writes kept for the next loop iteration are sent at once past this many bytes
# (uvicorn's own flow-control high-water mark).
FLUSH_AT = 65536

# Requests of one connection parsed ahead of its answers (HTTP/1.1 pipelining) at most;
# past it the rest of what was read is kept as bytes, and reading stays paused, until
# answers catch up. Fed to the parser in pieces of PARSE_SLICE so one read cannot queue
# thousands at once.
PIPELINE_MAX = 32
PARSE_SLICE = 8192

# Connections past max_connections kept for health probes only, and how soon their
# request head must arrive (a kubelet sends it at once).
PROBE_RESERVE = 16
PROBE_HEAD_S = 1.0
PROBE_PATHS = frozenset({b"/healthz", b"/readyz"})

# After a refusal, how long and how much input to read and discard before closing.
LINGER_S = 2.0
LINGER_BYTES = 256 * 1024


def _reset(transport: asyncio.BaseTransport) -> None:
    """Abort with a TCP reset, so the kernel drops the unsent answers too.

    A plain abort closes the socket, and the kernel keeps trying to deliver what is
    still in its send buffer (up to 4 MB on Linux) to a peer that does not read, for
    minutes; ``SO_LINGER`` with a zero timeout discards it at once.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_OFF)
    transport.abort()


_LINGER_OFF = struct.pack("ii", 1, 0)


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the answer is already chosen."""


class _Coalesced:
    """The connection's transport, sending what one loop iteration wrote in one write.

    Writes are kept until a callback at the start of the next loop iteration (or until
    ``FLUSH_AT`` bytes, or a close) and then go out in order as one ``transport.write``.
    That puts an answer's head and body in one segment (uvicorn writes them separately),
    and it sends the answers finished in one iteration back to back instead of spread
    between the other requests' work: a peer on the same machine (the ingress proxy, a
    sidecar, loopback) is woken once for them, not once per answer. Waking an idle peer
    CPU is the expensive part of a small write; on the 2-vCPU bench box one write cost
    17 us against 2.8 us when the peer was already awake (docs/pages/performance.md).
    The price is at most the rest of one loop iteration before an answer leaves.

    A write of ``FLUSH_AT`` bytes or more goes out at once, after what is pending, as the
    object it is: a large cached answer (a lookup, ``/openapi.json``) queued for many
    clients that read slowly or not at all is then held once, not copied per client.
    """

    __slots__ = ("_abort_after", "_loop", "_pending", "_size", "_transport")

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        abort_after: float = 10.0,
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None
        self._size = 0
        self._abort_after = abort_after

    def write(self, data: bytes) -> None:
        if not data:
            return
        if len(data) >= FLUSH_AT:
            # A large body goes out as the object it is: joined with what is pending it
            # would be copied, and a cached answer (a lookup, /openapi.json) held once
            # per slow client's buffer instead of shared by all of them.
            self._flush()
            if not self._transport.is_closing():
                self._transport.write(data)
            return
        pending = self._pending
        if pending is None:
            self._pending = [data]
            self._size = len(data)
            self._loop.call_soon(self._flush)
        else:
            pending.append(data)
            self._size += len(data)
        if self._size >= FLUSH_AT:
            self._flush()

    def writelines(self, chunks: Iterable[bytes]) -> None:
        self.write(b"".join(chunks))

    def _flush(self) -> None:
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        """Close once what was written is sent, or abort ``abort_after`` seconds later.

        A close waits for the write buffer to drain; a peer that does not read would
        keep the connection, its descriptor and its buffers forever (uvicorn closes this
        way after ``Connection: close``, at the keep-alive timeout, and so do refusals).
        """
        self._flush()
        transport = self._transport
        if transport.is_closing():
            return
        transport.close()
        if transport.get_write_buffer_size():
            self._loop.call_later(self._abort_after, _reset, transport)

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def reset(self) -> None:
        self._pending = None
        _reset(self._transport)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes: int = 32768
    request_timeout_s: float = 10.0
    max_connections: int = 10_000
    on_refusal: Callable[[str], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_done = False
        self._refusal: str | None = None
        self._discarded = 0
        # The request deadline is a value; one timer per connection checks it when due
        # and follows it if it has moved (arming and cancelling a timer for every
        # request cost ~2 us of each one).
        self._request_deadline: float | None = None
        self._request_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        # Body bytes still due for an upgrade request served as HTTP/1.1 (_ignore_upgrade).
        self._upgrade_body = 0
        # Read but not parsed: PIPELINE_MAX requests already wait for their answers.
        self._unparsed = b""
        # Armed while the transport's write buffer is over its high-water mark.
        self._send_timer: asyncio.TimerHandle | None = None
        # Past max_connections, in the reserve: health probes only (PROBE_RESERVE).
        self._probe_only = False
        # The app's shield-hit lane (gateway/ping/hit_lane.py), found once per connection,
        # and the request whose task waits for its body to ask it first.
        self._lane: Any = None
        self._heading = False
        self._held: RequestResponseCycle | None = None

    # -- connection --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Every write of uvicorn's and ours (answers, refusals, closes) goes through it,
        # so their order on the connection is kept.
        self.transport = _Coalesced(transport, self.loop, self.request_timeout_s)  # type: ignore[assignment]
        # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and a
        # socket bound elsewhere (uvicorn's --workers socket, an inherited one) has
        # proto 0: answers written as head + body then wait ~40 ms for a delayed ACK.
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.access_log:  # uvicorn's own access lines are written by its cycle
            self._lane = _lane_of(self.app)
        open_now = len(self.connections)
        if open_now > self.max_connections:
            if open_now > self.max_connections + PROBE_RESERVE:
                self._refuse("too_many_connections")
                return
            self._probe_only = True
            self._arm(min(PROBE_HEAD_S, self.request_timeout_s))
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._held = None
        for timer in (self._request_timer, self._linger_timer, self._send_timer):
            if timer is not None:
                timer.cancel()
        self._request_timer = self._linger_timer = self._send_timer = None
        self._unparsed = b""
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The peer is not taking our answers: it has ``request_timeout_s`` to start again.

        uvicorn only stops writing (the next ``send`` waits); without this a client that
        never reads would keep that request, its pipelined ones and the buffers forever.
        """
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.request_timeout_s, self._send_timed_out)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _send_timed_out(self) -> None:
        self._send_timer = None
        if self.on_refusal is not None:
            self.on_refusal("send_timeout")
        # Reset, not close: close would wait for the unread answers to drain, which they
        # will not. connection_lost then wakes the blocked send and drops the pipeline.
        transport = self.transport
        if isinstance(transport, _Coalesced):
            transport.reset()
        else:
            _reset(transport)

    def data_received(self, data: bytes) -> None:
        # uvicorn's own data_received, except that a parser error (ours or llhttp's)
        # gets the JSON refusal instead of uvicorn's plain-text 400 and warning log.
        if self._refusal is not None:  # lingering after a refusal: discard, bounded
            self._discarded += len(data)
            if self._discarded > LINGER_BYTES:
                self.transport.close()
            return
        if self._request_deadline is None and not self._in_request():
            self._arm()  # first byte of the next request on a kept-alive connection
        self._unset_keepalive_if_required()
        if self._unparsed:  # still behind on an earlier read: keep the order
            self._unparsed += data
            self.flow.pause_reading()
            return
        self._parse(data)

    def _parse(self, data: bytes) -> None:
        """Feed ``data`` to the parser, keeping what follows once PIPELINE_MAX requests wait."""
        while data and self._refusal is None:
            if self._upgrade_body:
                data = self._take_upgrade_body(data)
                if not data:
                    return
            if len(self.pipeline) >= PIPELINE_MAX:
                self._unparsed = data
                self.flow.pause_reading()
                # The client sent these bytes; it is the gateway that waits. Their clock
                # starts again when parsing resumes.
                self._disarm()
                return
            if len(data) > PARSE_SLICE:
                piece, data = data[:PARSE_SLICE], data[PARSE_SLICE:]
            else:
                piece, data = data, b""
            try:
                self.parser.feed_data(piece)
            except httptools.HttpParserError:
                self._refuse(self._refusal or "bad_request")
                return
            except httptools.HttpParserUpgrade as upgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                    return
                data = self._ignore_upgrade(piece[upgrade.args[0] :]) + data

    def on_response_complete(self) -> None:
        super().on_response_complete()  # starts the next pipelined request, resumes reading
        unparsed = self._unparsed
        if unparsed and not self.transport.is_closing():
            self._unparsed = b""
            self._unset_keepalive_if_required()
            self._arm()
            self._parse(unparsed)

    # -- parser callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A hit answered in the parser's callback armed the keep-alive timer; the next
        # request already in the buffer must not be cut by it.
        self._unset_keepalive_if_required()
        self._head_bytes = 0
        self._head_done = False
        if self._request_deadline is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > self.max_head_bytes:
            self._refusal = "uri_too_long"
            raise _Refused
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self.max_head_bytes:
            self._refusal = "headers_too_large"
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_done = True
        if self._probe_only:
            if httptools.parse_url(self.url).path not in PROBE_PATHS:
                self._refusal = "too_many_connections"
                raise _Refused
            super().on_headers_complete()
            if self.cycle is not None:
                self.cycle.keep_alive = False  # free the reserve for the next probe
            return
        self._heading = self._lane is not None
        try:
            super().on_headers_complete()
        finally:
            self._heading = False

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        """As uvicorn, except that a ping the hit lane may answer waits for its body."""
        if (
            self._heading
            and app is self.app
            and cycle.keep_alive
            and not self.expect_100_continue
            and not self.parser.should_upgrade()
            and self._lane.wants(cycle.scope)
        ):
            self._held = cycle
            return
        super()._start_asgi_task(cycle, app)

    def on_body(self, body: bytes) -> None:
        held = self._held
        if held is not None and len(held.body) + len(body) > HIGH_WATER_LIMIT:
            # Past it uvicorn pauses reading until the app asks for more: a held request
            # would wait for its own timeout. The app reads it as it streams in instead.
            self._held = None
            super()._start_asgi_task(held, self.app)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
        cycle = self._held
        if cycle is not None:
            self._held = None
            self._answer_now(cycle)

    def _answer_now(self, cycle: RequestResponseCycle) -> None:
        """The lane's answer, written as uvicorn's cycle writes one; or the ASGI task."""
        answered = None
        # A shutdown that began while the body came in turned keep-alive off: uvicorn's
        # cycle closes the connection after that answer, so it writes it. A client that
        # is not reading its answers (writing paused) gets no more from here either: the
        # ASGI way waits for it and stops parsing PIPELINE_MAX requests ahead.
        if cycle.keep_alive and not self.flow.write_paused:
            try:
                answered = self._lane(cycle.scope, cycle.body)
            except Exception:  # a bug of the lane must not cost the ping: the ASGI way
                log.exception("the hit lane failed; the request goes the ASGI way")
        if answered is None:
            super()._start_asgi_task(cycle, self.app)
            return
        start, body = answered
        head = [STATUS_LINE[start["status"]]]
        for name, value in (*cycle.default_headers, *start["headers"]):
            head += (name, b": ", value, b"\r\n")
        head += (b"\r\n", body)
        cycle.response_started = cycle.response_complete = True
        self.transport.write(b"".join(head))
        self.on_response_complete()

    # -- Upgrade (h2c and any other that is not a WebSocket) ---------------------------

    def _ignore_upgrade(self, rest: bytes) -> bytes:
        """Serve an upgrade request as the HTTP/1.1 request it also is; the bytes after its body.

        ``curl --http2`` asks a plain-http server to switch with ``Upgrade: h2c``; a server
        may ignore that (RFC 9110 7.8) and answer in HTTP/1.1, and the gateway does. But
        llhttp ends the message at the head of any upgrade request and hands back the rest
        as "the other protocol": left alone, a ping's JSON body was never read (422) and
        nothing after it on the connection was answered. Here the body (its
        ``Content-Length``) is taken from what follows, and the parser, which starts afresh
        after an upgrade, gets the bytes after it as the next request.
        """
        cycle = self.cycle
        if cycle is None:
            return b""
        length = 0
        for name, value in self.headers:
            if name == b"content-length":
                length = int(value)  # llhttp has refused a malformed one already
            elif name == b"transfer-encoding":
                cycle.disconnected = True  # the app, already started, must not answer too
                cycle.message_event.set()
                self._refuse("bad_request", answer="upgrade_with_chunked_body")
                return b""
        if length <= 0:
            return rest
        self._upgrade_body = length
        cycle.more_body = True  # llhttp called the message complete at its head
        self._arm()  # the body is due within the request timeout, like any other
        return self._take_upgrade_body(rest)

    def _take_upgrade_body(self, data: bytes) -> bytes:
        """Hand the app the upgrade request's body from ``data``; what follows it."""
        cycle = self.cycle
        assert cycle is not None
        take = min(self._upgrade_body, len(data))
        self._upgrade_body -= take
        if not cycle.response_complete:  # as uvicorn's on_body: an answered request drops it
            cycle.body += data[:take]
            if len(cycle.body) > HIGH_WATER_LIMIT:
                self.flow.pause_reading()
        if not self._upgrade_body:
            cycle.more_body = False
            self._disarm()
        cycle.message_event.set()
        return data[take:]

    # -- helpers -----------------------------------------------------------------------

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self, timeout_s: float | None = None) -> None:
        self._request_deadline = self.loop.time() + (timeout_s or self.request_timeout_s)
        if self._request_timer is None:
            self._request_timer = self.loop.call_at(self._request_deadline, self._due)

    def _disarm(self) -> None:
        self._request_deadline = None  # a pending timer finds nothing due

    def _due(self) -> None:
        self._request_timer = None
        deadline = self._request_deadline
        if deadline is None:
            return
        if deadline - self.loop.time() > 0.001:  # re-armed by a later request: follow it
            self._request_timer = self.loop.call_at(deadline, self._due)
            return
        self._request_deadline = None
        self._timed_out()

    def _timed_out(self) -> None:
        if self.transport.is_closing():
            return
        if self._head_done and self.cycle is not None:
            # The app is waiting for a body that is not coming: tell it the client left.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
            answered = self.cycle.response_started
            self._refuse("request_timeout", write=not answered)
            return
        self._refuse("request_timeout")

    def _refuse(self, why: str, *, write: bool = True, answer: str | None = None) -> None:
        self._refusal = why
        self._disarm()
        if self.on_refusal is not None:
            self.on_refusal(why)
        transport = self.transport
        if transport.is_closing():
            return
        if write:
            transport.write(_ANSWERS[answer or why])
        if write and transport.can_write_eof():
            # Lingering close: closing with unread input makes the kernel send RST, which
            # can destroy the answer before the client reads it (a client still sending
            # its oversized head). Half-close, discard what still comes for a moment,
            # then close.
            transport.write_eof()
            self._linger_timer = self.loop.call_later(LINGER_S, transport.close)
        else:
            transport.close()


def _lane_of(app: Any) -> Any:
    """The hit lane a started gateway app keeps in its state, under uvicorn's wrappers
    (proxy headers, message logging); None for any other app."""
    for _ in range(8):
        state = getattr(app, "state", None)
        if state is not None:
            return getattr(state, "hit_lane", None)
        app = getattr(app, "app", None)
        if app is None:
            break
    return None


def configure(
    *,
    max_head_bytes: int,
    request_timeout_s: float,
    max_connections: int,
    on_refusal: Callable[[str], None] | None = None,
) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for these limits, to hand uvicorn as ``http=``.

    A subclass made per call: the limits belong to the class uvicorn is given, never to
    the shared :class:`GuardedHttpToolsProtocol`, so two servers in one process (the tests
    run many) each keep their own and nothing is mutated at start."""
    limits: dict[str, Any] = {
        "max_head_bytes": max_head_bytes,
        "request_timeout_s": request_timeout_s,
        "max_connections": max_connections,
        "on_refusal": staticmethod(on_refusal) if on_refusal is not None else None,
        "__module__": __name__,
    }
    return type(GuardedHttpToolsProtocol.__name__, (GuardedHttpToolsProtocol,), limits)


def configure_worker_process(
    *,
    max_head_bytes: int,
    request_timeout_s: float,
    max_connections: int,
    on_refusal: Callable[[str], None] | None = None,
) -> None:
    """Set the limits on :class:`GuardedHttpToolsProtocol` itself, for a ``--workers N``
    worker: uvicorn pickles its config, protocol class included, into each spawned worker,
    so the class must be importable by name, and the worker (a process that serves only
    these settings) sets its limits once, at its start. Everywhere else :func:`configure`
    makes a class of its own."""
    cls = GuardedHttpToolsProtocol
    cls.max_head_bytes = max_head_bytes
    cls.request_timeout_s = request_timeout_s
    cls.max_connections = max_connections
    cls.on_refusal = staticmethod(on_refusal) if on_refusal is not None else None  # type: ignore[assignment]
