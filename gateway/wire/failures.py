"""Why an upstream call failed, in words fit for a client's error body.

The Core API client's table, translating httpx2's (and the socket's) errors into the
words of a ``502 bad_gateway``; the RTB client's own failures
(:class:`gateway.wire.http1.HttpFailure`) carry their words themselves, the same
ones for the same failures. Never the exception's own text: it may hold the URL, and a
Core API URL carries the client's ``api_key``.

httpx2 raises one ``RemoteProtocolError`` both for a connection closed before the
answer and for an answer that is not HTTP, and one ``ReadError`` for a reset whether or
not the head had arrived; the phase the client was in (waiting for the head, or
reading the body) tells them apart.
"""

from __future__ import annotations

from enum import Enum

import httpx2

from gateway.wire.answer import AnswerTooLarge


class Phase(Enum):
    """Where in the exchange a failure happened."""

    HEAD = "head"  # connecting, sending, or waiting for the status line and headers
    BODY = "body"  # the head arrived; reading the body


# Failures while reading the body, whatever their kind: the head said 200, the rest broke.
BROKEN_BODY = "broken response body"

# Before the head: first match wins, so subclasses come before their bases.
HTTPX2_ERRORS: tuple[tuple[type[BaseException], str], ...] = (
    (httpx2.ConnectError, "connection refused or unreachable"),
    (httpx2.RemoteProtocolError, "malformed response"),
    (httpx2.ReadError, "connection reset"),
    (httpx2.WriteError, "connection closed before an answer"),
    (ConnectionResetError, "connection reset"),
)
# httpcore2's words for a connection the upstream closed without a status line.
_CLOSED_EARLY = "disconnected without sending a response"


def describe(exc: BaseException, phase: Phase = Phase.HEAD) -> str:
    if phase is Phase.BODY and isinstance(exc, (httpx2.RequestError, OSError)):
        return BROKEN_BODY
    if isinstance(exc, httpx2.RemoteProtocolError) and _CLOSED_EARLY in str(exc):
        return "connection closed before an answer"
    for kind, words in HTTPX2_ERRORS:
        if isinstance(exc, kind):
            return words
    return type(exc).__name__


def too_large(exc: AnswerTooLarge, setting: str) -> str:
    return f"its answer was over {setting} ({exc.limit} bytes); the connection was dropped"
