"""Operator routes under ``/admin/``: who may call them, and the ledger's export.

Authorization, for every admin route: with ``GATEWAY_ADMIN_TOKEN`` set, the request must
carry ``Authorization: Bearer <token>`` (compared in constant time; wrong or missing:
401); without a token only loopback clients are answered (any other: 403), so a fresh
install is not open to the network. The client address is the socket's, never a
forwarded header: a proxy in front must be given the token.

``GET /admin/ledger.ndjson?since=&until=&limit=`` streams events oldest first, one JSON
object a line with every field present (``null`` when empty). ``since``/``until`` are
RFC 3339 times (``since`` inclusive, ``until`` exclusive); ``limit`` defaults to 10,000
and is at most 1,000,000. A bad value is a 400 naming the parameter.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.errors import InvalidQuery, LedgerUnavailable, LoopbackOnly, Unauthorized
from gateway.ledger.events import parse_at
from gateway.ledger.store import StoreUnavailable
from gateway.ledger.writer import Ledger

EXPORT_LIMIT_DEFAULT = 10_000
EXPORT_LIMIT_MAX = 1_000_000
# Rows per chunk written to the socket: one send per few hundred KB, not per line.
CHUNK_ROWS = 500
NDJSON = "application/x-ndjson"

_encoder = msgspec.json.Encoder()


class AdminAuth:
    """The one check every admin route makes first."""

    def __init__(self, token: str | None) -> None:
        self._expected = f"Bearer {token}".encode() if token else None

    def check(self, request: Request) -> None:
        if self._expected is None:
            client = request.scope.get("client")
            if not client or not _loopback(client[0]):
                raise LoopbackOnly()
            return
        given = request.headers.get("authorization", "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, self._expected):
            raise Unauthorized(headers={"www-authenticate": 'Bearer realm="admin"'})


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def guarded(auth: AdminAuth, handler: Handler) -> Handler:
    """``handler`` behind :class:`AdminAuth` (for issue-by-issue admin routes to reuse)."""

    async def endpoint(request: Request) -> Response:
        auth.check(request)
        return await handler(request)

    return endpoint


class LedgerExport:
    """``GET /admin/ledger.ndjson``."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def handle(self, request: Request) -> Response:
        since, until, limit = export_params(request.query_params)
        rows = self.ledger.store.export(since, until, limit)
        # Read the first rows before answering, so a store that is down is a clean 503.
        try:
            first = await _first_chunk(rows)
        except StoreUnavailable:
            raise LedgerUnavailable() from None
        return StreamingResponse(_chunks(first, rows), media_type=NDJSON)


def query_times(params: Any, names: tuple[str, ...], problems: dict[str, str]) -> dict:
    """The RFC 3339 times named ``names`` in ``params`` as epoch seconds (None when
    absent); each one that does not parse is added to ``problems`` by its name."""
    times: dict[str, float | None] = dict.fromkeys(names)
    for name in names:
        raw = params.get(name)
        if raw is None:
            continue
        try:
            times[name] = parse_at(raw)
        except ValueError:
            problems[name] = "must be an RFC 3339 time such as 2026-12-04T18:00:00Z"
    return times


def export_params(params: Any) -> tuple[float | None, float | None, int]:
    problems: dict[str, str] = {}
    times = query_times(params, ("since", "until"), problems)
    limit = EXPORT_LIMIT_DEFAULT
    raw_limit = params.get("limit")
    if raw_limit is not None:
        if not (raw_limit.isascii() and raw_limit.isdigit()) or len(raw_limit) > 9:
            problems["limit"] = f"must be a whole number from 1 to {EXPORT_LIMIT_MAX}"
        else:
            limit = int(raw_limit)
            if not 1 <= limit <= EXPORT_LIMIT_MAX:
                problems["limit"] = f"must be a whole number from 1 to {EXPORT_LIMIT_MAX}"
    since, until = times["since"], times["until"]
    if since is not None and until is not None and until < since:
        problems["until"] = "must not be before since"
    if problems:
        raise InvalidQuery(f"invalid parameters: {', '.join(sorted(problems))}", fields=problems)
    return since, until, limit


async def _first_chunk(rows: AsyncIterator[Any]) -> bytes:
    lines = []
    async for row in rows:
        lines.append(_encoder.encode(row))
        if len(lines) >= CHUNK_ROWS:
            break
    return b"".join(line + b"\n" for line in lines)


async def _chunks(first: bytes, rows: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    if first:
        yield first
    lines: list[bytes] = []
    async for row in rows:
        lines.append(_encoder.encode(row) + b"\n")
        if len(lines) >= CHUNK_ROWS:
            yield b"".join(lines)
            lines = []
    if lines:
        yield b"".join(lines)


def admin_routes(ledger: Ledger, token: str | None) -> list[Route]:
    auth = AdminAuth(token)
    export = LedgerExport(ledger)
    return [Route("/admin/ledger.ndjson", guarded(auth, export.handle), methods=["GET"])]
