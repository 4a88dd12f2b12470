"""Why an upstream call failed, in words fit for a client's error body.

One vocabulary for every upstream: the failure kinds of the gateway's own HTTP/1.1
client (:class:`gateway.wire.http1.HttpFailure` and its subclasses) own the words, and
this table maps httpx2's (and the socket's) errors, as the Core API client meets them,
onto those same kinds. Never the exception's own text: it may hold the URL, and a Core
API URL carries the client's ``api_key``.

httpx2 raises one ``RemoteProtocolError`` both for a connection closed before the
answer and for an answer that is not HTTP, and one ``ReadError`` for a reset whether or
not the head had arrived; the phase the client was in (waiting for the head, or
reading the body) tells them apart.
"""

from __future__ import annotations

from enum import Enum

import httpx2

from gateway.wire.answer import AnswerTooLarge
from gateway.wire.http1 import (
    BrokenBody,
    ClosedEarly,
    ConnectFailed,
    HttpFailure,
    Malformed,
    Reset,
)


class Phase(Enum):
    """Where in the exchange a failure happened."""

    HEAD = "head"  # connecting, sending, or waiting for the status line and headers
    BODY = "body"  # the head arrived; reading the body


# Failures while reading the body, whatever their kind: the head said 200, the rest broke.
BROKEN_BODY = BrokenBody.words

# Before the head: first match wins, so subclasses come before their bases.
HTTPX2_ERRORS: tuple[tuple[type[BaseException], type[HttpFailure]], ...] = (
    (httpx2.ConnectError, ConnectFailed),
    (httpx2.RemoteProtocolError, Malformed),
    (httpx2.ReadError, Reset),
    (httpx2.WriteError, ClosedEarly),
    (ConnectionResetError, Reset),
)
# httpcore2's words for a connection the upstream closed without a status line.
_CLOSED_EARLY = "disconnected without sending a response"


def describe(exc: BaseException, phase: Phase = Phase.HEAD) -> str:
    if phase is Phase.BODY and isinstance(exc, (httpx2.RequestError, OSError)):
        return BROKEN_BODY
    if isinstance(exc, httpx2.RemoteProtocolError) and _CLOSED_EARLY in str(exc):
        return ClosedEarly.words
    for error, kind in HTTPX2_ERRORS:
        if isinstance(exc, error):
            return kind.words
    return type(exc).__name__


def too_large(exc: AnswerTooLarge, setting: str) -> str:
    return f"its answer was over {setting} ({exc.limit} bytes); the connection was dropped"
