"""The access log: one line per request, costing about what nginx's does.

Through the ``logging`` module an access line cost ~12.7 us (a ``LogRecord``, the
formatter's dict and redaction pass, the handler lock, one ``write`` per line): a quarter
of a shield hit. Here a line is one msgspec call that encodes a small struct straight
into this process's pending buffer, and the buffer goes out in one ``write`` at the start
of the next loop iteration, however many requests finished in this one. Nothing on the
request path takes a lock or makes a system call.

The line is the one the logging path printed, field for field and in the same order
(``ts``, ``level``, ``logger``, ``msg``, ``route``, ``method``, ``status``,
``duration_ms``, ``request_id``, then ``shield`` and ``upstream_ms`` when set), in the
same format (``GATEWAY_LOG_FORMAT``: JSON, or the text formatter's ``key=value`` line) and
through the same :func:`~gateway.observe.logs.redact`. Redaction runs only when a part
of the line could hold a secret: the route template and shield word are checked once per
distinct value (they are bounded: code chose them), a request id the client sent is
checked per request, and the ids the gateway makes are hex, which never can. The fixed
parts (field names, level, logger, numbers, timestamp) hold none of the words redaction
looks for and no separator can join two parts into one, so skipping ``redact`` on a
clean line returns exactly what ``redact`` would have.

Back-pressure is bounded, never a stall: the destination is written with non-blocking
writes on a file description of its own (a pipe or terminal is reopened through
``/proc/self/fd``, so the ``O_NONBLOCK`` flag never reaches the shell, supervisor or
container runtime sharing the original one). What a slow reader cannot take yet waits
in the buffer, sent when the descriptor turns writable; lines that would push the buffer
past ``GATEWAY_ACCESS_LOG_BUFFER_BYTES``, and lines lost to a write error, are dropped and
counted (``gateway_access_log_dropped_total``, ``/stats`` ``access_log.dropped``). Writes
to a pipe go in chunks of at most ``PIPE_BUF`` cut at line ends, which the kernel writes
whole or not at all, so lines from several workers sharing one pipe never tear.

``GATEWAY_ACCESS_LOG_SAMPLE`` keeps that share of 2xx lines (1.0, the default, keeps
all); every other status, errors above all, is always logged.

Without :func:`gateway.observe.logs.configure` (an app embedded under someone else's
logging set-up, or a test capturing records) there is no destination of ours, and each
line is a ``gateway.access`` record as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import select
import socket
import stat
import time
import weakref
from collections.abc import Callable
from typing import IO

import msgspec

from gateway.observe.logs import _SUSPECTS, Destination, redact

log = logging.getLogger("gateway")
access_records = logging.getLogger("gateway.access")

PIPE_BUF = getattr(select, "PIPE_BUF", 4096)
DEFAULT_BUFFER_BYTES = 1024 * 1024
# The millisecond parts of the timestamps, made once: an f-string per line cost 0.3 us.
_JSON_MS = tuple(f".{ms:03d}Z" for ms in range(1000))
_TEXT_MS = tuple(f",{ms:03d}" for ms in range(1000))


class AccessLine(msgspec.Struct, omit_defaults=True, gc=False):
    """One JSON access line, fields in the order the logging formatter wrote them."""

    ts: str
    level: str
    logger: str
    msg: str
    route: str
    method: str
    status: int
    duration_ms: float
    request_id: str
    shield: str | None = None
    upstream_ms: float | None = None


def suspect(text: str) -> bool:
    """Whether ``text`` holds a word :func:`redact` looks for (then it must run)."""
    lowered = text.lower()
    return any(s in lowered for s in _SUSPECTS)


class LineBuffer:
    """Bytes kept for the next loop iteration, sent with non-blocking writes.

    Lines are appended to :attr:`pending` (a ``bytearray``, so msgspec can encode into
    it) and :meth:`added` schedules one flush per loop iteration. A flush never blocks: what
    the destination does not take stays pending and goes when the descriptor turns
    writable. Lines lost to a write error (a closed pipe) are reported through ``on_lost``;
    refusing lines past :attr:`max_bytes` is the caller's part (it knows where a line
    began).
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        max_bytes: int = DEFAULT_BUFFER_BYTES,
        on_lost: Callable[[int], None] = lambda n: None,
    ) -> None:
        self._stream = stream
        self.max_bytes = max_bytes
        self._on_lost = on_lost
        self.pending = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False
        self._waiting_fd: int | None = None  # registered with add_writer
        self._fd: int | None = None
        self._sock: socket.socket | None = None
        self._chunk = 0  # 0: all pending per write; else PIPE_BUF chunks cut at line ends
        self._opened = False
        self._failed_once = False
        self._finalizers: list[weakref.finalize] = []  # closes what _open opened

    def added(self) -> None:
        """Lines were appended to :attr:`pending`: make sure a flush will send them."""
        if self._scheduled:
            return
        loop = asyncio.get_running_loop()
        self._scheduled = True
        if self._waiting_fd is not None and loop is self._loop:
            return  # the writable callback will send them
        self._stop_waiting()
        self._loop = loop
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what is pending, as far as the destination takes it without waiting."""
        self._scheduled = False
        if not self._opened:
            self._open()
        pending = self.pending
        if not pending:
            self._stop_waiting()
            return
        if self._fd is None and self._sock is None:
            self._write_stream()
            return
        sent = self._send(pending)
        if sent < 0:  # a write error: what was pending is lost
            lost = pending.count(b"\n")
            pending.clear()
            self._stop_waiting()
            self._on_lost(lost)
            return
        del pending[:sent]  # cheap: a bytearray drops its head without moving the rest
        if pending:
            self._wait_writable()
        else:
            self._stop_waiting()

    def _send(self, data: bytearray) -> int:
        """Bytes sent (possibly fewer than ``data``), or -1 after a write error."""
        sent = 0
        total = len(data)
        with memoryview(data) as view:
            try:
                while sent < total:
                    end = total
                    if self._chunk and total - sent > self._chunk:
                        cut = data.rfind(b"\n", sent, sent + self._chunk)
                        end = cut + 1 if cut >= sent else sent + self._chunk
                    if self._sock is not None:
                        n = self._sock.send(view[sent:end], socket.MSG_DONTWAIT)
                    else:
                        assert self._fd is not None
                        n = os.write(self._fd, view[sent:end])
                    sent += n
                    if sent < end:
                        break  # the destination took part of it: wait until it is writable
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._report_failure(exc)
                return -1
        return sent

    def _write_stream(self) -> None:
        data = bytes(self.pending)
        self.pending.clear()
        try:
            self._stream.write(data.decode("utf-8", "replace"))
            self._stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: a closed stream
            self._report_failure(exc)
            self._on_lost(data.count(b"\n"))

    def _wait_writable(self) -> None:
        if self._waiting_fd is not None or self._loop is None or self._loop.is_closed():
            return
        fd = self._sock.fileno() if self._sock is not None else self._fd
        assert fd is not None
        try:
            self._loop.add_writer(fd, self.flush)
        except (OSError, ValueError):  # not pollable: retry a little later
            self._loop.call_later(0.05, self.flush)
            return
        self._waiting_fd = fd

    def _stop_waiting(self) -> None:
        if self._waiting_fd is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError, ValueError, OSError):
                self._loop.remove_writer(self._waiting_fd)
        self._waiting_fd = None

    def _report_failure(self, exc: BaseException) -> None:
        if not self._failed_once:
            self._failed_once = True
            # Through logging, which may well be the same broken destination; said once.
            log.warning(
                "access log lines lost: the log destination failed",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )

    def _open(self) -> None:
        """A non-blocking file description of our own on the stream's descriptor."""
        self._opened = True
        try:
            fd = self._stream.fileno()
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError):
            return  # a StringIO or a captured stream: written through ``write``
        self._flush_stream()  # what the stream still buffers goes out before our lines
        if stat.S_ISREG(mode):
            # A file never makes a writer wait for a reader; share its offset and flags.
            own = os.dup(fd)
        elif stat.S_ISSOCK(mode):
            sock = self._sock = socket.socket(fileno=os.dup(fd))
            self._finalizers.append(weakref.finalize(self, sock.close))
            return
        else:
            try:
                own = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                log.warning(
                    "access log: cannot reopen the log destination non-blocking; its lines "
                    "go through the stream, so a stalled reader would stall the gateway"
                )
                return
            if stat.S_ISFIFO(mode):
                self._chunk = PIPE_BUF
        self._fd = own
        self._finalizers.append(weakref.finalize(self, os.close, own))

    def _flush_stream(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def close(self) -> None:
        """A last non-blocking attempt; whatever is still pending then is counted lost."""
        with contextlib.suppress(RuntimeError):
            self.flush()
        self._stop_waiting()
        lost = self.pending.count(b"\n")
        self.pending.clear()
        if lost:
            self._on_lost(lost)
        # Our description goes now (a reader waiting for end-of-file must see it); a
        # line written after this opens a new one.
        for finalizer in self._finalizers:
            finalizer()
        self._finalizers.clear()
        self._fd = None
        self._sock = None
        self._chunk = 0
        self._opened = False


class AccessLog:
    """Encodes each request's line and hands it to this process's :class:`LineBuffer`."""

    def __init__(
        self,
        destination: Destination | None,
        *,
        sample: float = 1.0,
        max_bytes: int = DEFAULT_BUFFER_BYTES,
        on_drop: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.sample = sample
        self._on_drop = on_drop
        self._clean: set[str] = set()  # route templates and shield words known clean
        self._encoder = msgspec.json.Encoder()
        self._second = -1
        self._stamp = ""
        self._local = ""
        self.buffer: LineBuffer | None = None
        self.json = True
        if destination is not None:
            self.json = destination.json
            self.buffer = LineBuffer(destination.stream, max_bytes=max_bytes, on_lost=on_drop)

    def enabled(self) -> bool:
        return access_records.isEnabledFor(logging.INFO)

    def write(
        self,
        route: str,
        method: str,
        status: int,
        seconds: float,
        request_id: str,
        shield: str | None,
        upstream_seconds: float | None,
        *,
        foreign_id: bool = True,
    ) -> None:
        """Log one request (``foreign_id``: the request id came from the client)."""
        if self.sample < 1.0 and 200 <= status < 300 and random.random() >= self.sample:
            return
        duration_ms = round(seconds * 1000, 3)
        upstream_ms = None if upstream_seconds is None else round(upstream_seconds * 1000, 3)
        buffer = self.buffer
        if buffer is None:
            access_records.info(
                "request",
                extra={
                    "route": route,
                    "method": method,
                    "status": status,
                    "duration_ms": duration_ms,
                    "request_id": request_id,
                    "shield": shield,
                    "upstream_ms": upstream_ms,
                },
            )
            return
        now = time.time()
        clean = self._clean
        dirty = (
            (route not in clean and not self._is_clean(route))
            or (shield is not None and shield not in clean and not self._is_clean(shield))
            or (foreign_id and suspect(request_id))
        )
        pending = buffer.pending
        start = len(pending)
        if start >= buffer.max_bytes:
            self._on_drop(1)
            return
        if self.json:
            line = AccessLine(
                self._json_time(now),
                "info",
                "gateway.access",
                "request",
                route,
                method,
                status,
                duration_ms,
                request_id,
                shield,
                upstream_ms,
            )
            if dirty:
                pending += redact(self._encoder.encode(line).decode()).encode()
            else:
                self._encoder.encode_into(line, pending, -1)  # the one call per line
        else:
            text = (
                f"{self._text_time(now)} INFO    gateway.access: request route={route} "
                f"method={method} status={status} duration_ms={duration_ms} "
                f"request_id={request_id}"
            )
            if shield is not None:
                text += f" shield={shield}"
            if upstream_ms is not None:
                text += f" upstream_ms={upstream_ms}"
            pending += (redact(text) if dirty else text).encode()
        pending += b"\n"
        if len(pending) > buffer.max_bytes:
            del pending[start:]
            self._on_drop(1)
            return
        buffer.added()

    def _is_clean(self, word: str) -> bool:
        """Remember clean words (route templates, shield words: few, chosen by code)."""
        if suspect(word):
            return False
        if len(self._clean) < 4096:  # a bound all the same
            self._clean.add(word)
        return True

    def _json_time(self, now: float) -> str:
        """As the JSON formatter: ISO 8601 UTC, milliseconds; seconds formatted once."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return self._stamp + _JSON_MS[int((now - second) * 1000)]

    def _text_time(self, now: float) -> str:
        """As ``logging.Formatter``: local time, ``,`` and milliseconds."""
        second = int(now)
        if second != self._second:
            self._json_time(now)
        return self._local + _TEXT_MS[int((now - second) * 1000)]

    def close(self) -> None:
        if self.buffer is not None:
            self.buffer.close()
