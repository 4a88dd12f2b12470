"""Logging: one JSON object per line (or readable text on a terminal), with secrets masked.

Every logger (ours, uvicorn's, httpx2's, redis', asyncio's) goes through one
handler and one formatter, and the formatter masks the *finished line*: message, extra
fields, nested values and tracebacks alike, so no code path can format a secret in after
the masking ran. Masking is a last line of defence: code should not log secrets in the
first place (the access log carries the route template, never the path or query).

What is masked (names case-insensitive; any name ending in ``key``, ``password``,
``passwd``, ``pwd``, ``token``, ``secret``, ``authorization`` counts):

- ``name=value``, ``name: value`` and ``name%3Dvalue``, quoted or not: query strings, form
  bodies, Python reprs (``Ping(key='...')``, ``{'api_key': '...'}``), JSON (also when
  escaped inside another JSON string), headers (``Authorization: Bearer ...``);
- header tuples as printed by ASGI servers (``(b'authorization', b'...')``);
- the postback key in call data writing's path (``/data_writing/<key>``);
- the userinfo of any URL (``redis://user:***@host``, ``rediss://***@host``).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import IO, Any

import msgspec

from gateway.observe.stats import current_request

_NAME = r"[A-Za-z0-9_\-]*(?:key|passw(?:or)?d|pwd|token|secret|authorization)"
_Q = r"(?:\\*[\"'])?"  # an optional quote, possibly backslash-escaped (JSON in JSON)
_AUTH_SCHEME = r"(?:(?:bearer|basic|token|digest)(?:\s+|%20|\+))?"

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], Any], ...] = (
    # name=value / name: value / name%3Dvalue, each side optionally quoted
    (
        re.compile(
            rf"(?i)(?<![A-Za-z0-9])({_NAME}{_Q}\s*(?:=|:|%3D|%3A)\s*{_Q}(?:b\\*['\"])?{_AUTH_SCHEME})"
            r"[^\s&\"'\\,;)}\]<>]+"
        ),
        r"\1***",
    ),
    # header pairs: (b'authorization', b'Bearer x'), ('x-api-key', 'x')
    (
        re.compile(rf"(?i)({_NAME}['\"]\s*,\s*b?['\"]{_AUTH_SCHEME})[^'\"]+"),
        r"\1***",
    ),
    # the postback key as a path segment: GET /data_writing/<key>?caller_number=...
    # (the route template ``/data_writing/{key}`` stays readable)
    (re.compile(r"(?i)(/data_writing/)[^/?\s&\"'\\<>{][^/?\s&\"'\\<>]*"), r"\1***"),
    # userinfo in URLs: scheme://user:pass@host -> user:***@, scheme://token@host -> ***@
    (
        re.compile(r"(?i)([a-z][a-z0-9+.\-]*://)([^/\s@'\"<>]*)@"),
        lambda m: (
            m.group(1)
            + (m.group(2).split(":", 1)[0] + ":***" if ":" in m.group(2) else "***")
            + "@"
        ),
    ),
)

# Lines without any of these cannot match a pattern above: skip the work (access lines).
# Plain substring tests on the lowered line: a case-insensitive regex alternation costs
# ~10 us per line, these ~1 us.
_SUSPECTS = ("key", "passw", "pwd", "token", "secret", "authorization", "://", "data_writing")

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI copy of the message
}

_encoder = msgspec.json.Encoder()


def redact(text: str) -> str:
    """``text`` with every secret-looking value replaced by ``***``."""
    lowered = text.lower()
    if not any(s in lowered for s in _SUSPECTS):
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and v is not None}
    if "request_id" not in extras:
        ctx = current_request.get()
        if ctx is not None:
            extras["request_id"] = ctx.request_id
    return extras


def _encodable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, list, dict)) else repr(value)


_last_second: list[Any] = [-1, ""]


def _timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 UTC with milliseconds; the seconds part is formatted once per second."""
    second = int(record.created)
    if second != _last_second[0]:
        _last_second[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))]
    return f"{_last_second[1]}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in _extras(record).items():
            payload.setdefault(name, value)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        try:
            line = _encoder.encode(payload)
        except (TypeError, ValueError, OverflowError):
            line = _encoder.encode({k: _encodable(v) for k, v in payload.items()})
        return redact(line.decode("utf-8", "replace"))


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = super().format(record)
        if extras:
            first, nl, rest = line.partition("\n")
            line = f"{first} {extras}{nl}{rest}"
        return redact(line)


class Destination:
    """Where this process's log lines go and in which format, as :func:`configure` set
    them: the access log (gateway/observe/access_log.py) writes its lines there itself."""

    __slots__ = ("json", "stream")

    def __init__(self, stream: IO[str], json: bool) -> None:
        self.stream = stream
        self.json = json


# Set by configure(); None until then (lines are then plain records of ``gateway.access``).
_destination: list[Destination | None] = [None]


def destination() -> Destination | None:
    """This process's log destination, or ``None`` when :func:`configure` never ran."""
    return _destination[0]


def set_destination(value: Destination | None) -> Destination | None:
    """Replace the destination (tests restore theirs); returns the previous one."""
    previous, _destination[0] = _destination[0], value
    return previous


LIBRARY_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "httpx2",
    "httpcore2",
    "httpx",
    "httpcore",
    "redis",
    "asyncio",
)
# Request-per-line loggers: the Core API client's and the CLI's (httpx2), and httpx's,
# which tests and the Starlette TestClient may still bring.
CHATTY_LOGGERS = ("httpx2", "httpcore2", "httpx", "httpcore")


def resolve_format(fmt: str, stream: IO[str]) -> str:
    """``auto`` is text for a person at a terminal, JSON lines for everything else.

    Text only when both stdout and the log stream are terminals: ``gateway serve | jq``
    and ``gateway serve 2>file`` get JSON, as does any container runtime or supervisor.
    """
    if fmt != "auto":
        return fmt
    return "text" if _isatty(sys.stdout) and _isatty(stream) else "json"


def _isatty(stream: IO[str] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a closed or stream-like object
        return False


def configure(fmt: str = "json", level: str = "info", stream: IO[str] | None = None) -> None:
    """Send every logger through one handler on ``stream`` (stderr) with one formatter
    (``fmt``: ``json``, ``text`` or ``auto``, see :func:`resolve_format`)."""
    stream = stream or sys.stderr
    # No formatter here prints file/line/function, so skip the stack walk that finds them
    # for every record (the logging HOWTO's own advice; ~4 us per access line).
    logging._srcfile = None  # type: ignore[attr-defined]
    handler = logging.StreamHandler(stream)
    json = resolve_format(fmt, stream) == "json"
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    set_destination(Destination(stream, json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
        logger.disabled = False
    # uvicorn's access log would duplicate ours and print raw paths with query strings.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx/httpcore log every request URL at INFO and wire detail at DEBUG: noise next to
    # our access log. The formatter would mask a key in them; keep them for debug only.
    if level.lower() != "debug":
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
