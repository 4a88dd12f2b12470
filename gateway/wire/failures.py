"""Why an upstream call failed, in words fit for a client's error body.

The Core API client's table, translating aiohttp's (and the socket's) errors into the
words of a ``502 bad_gateway``; the RTB client's own failures
(:class:`gateway.wire.http1.HttpFailure`) carry their words themselves, the same
ones for the same failures. Never the exception's own text: aiohttp puts the URL in it,
and a Core API URL carries the client's ``api_key``.
"""

from __future__ import annotations

import aiohttp

from gateway.wire.answer import AnswerTooLarge

# First match wins, so subclasses come before their bases.
AIOHTTP_ERRORS: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ClientConnectorError, "connection refused or unreachable"),
    (aiohttp.ServerDisconnectedError, "connection closed before an answer"),
    (aiohttp.ClientPayloadError, "broken response body"),
    (aiohttp.ClientResponseError, "malformed response"),
    (ConnectionResetError, "connection reset"),
)


def describe(exc: BaseException) -> str:
    for kind, words in AIOHTTP_ERRORS:
        if isinstance(exc, kind):
            return words
    return type(exc).__name__


def too_large(exc: AnswerTooLarge, setting: str) -> str:
    return f"its answer was over {setting} ({exc.limit} bytes); the connection was dropped"
