"""Why an upstream call failed, in words fit for a client's error body.

Shared by the RTB and Core API clients. Never the exception's own text: aiohttp puts the
URL in it, and a Core API URL carries the client's ``api_key``.
"""

from __future__ import annotations

import aiohttp

from gateway.upstream.answer import AnswerTooLarge


def describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection refused or unreachable"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed before an answer"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "broken response body"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "malformed response"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    return type(exc).__name__


def too_large(exc: AnswerTooLarge, setting: str) -> str:
    return f"its answer was over {setting} ({exc.limit} bytes); the connection was dropped"
