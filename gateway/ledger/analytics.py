"""Publisher analytics: ``GET /admin/publishers.json``, ``.csv`` and the page ``/admin/publishers``.

Parameters (a bad value is a 400 naming it): ``from``/``to`` RFC 3339 times (default:
the last 24 hours; rollups are hourly, so ``from`` counts from the start of its hour and
``to`` is exclusive), ``by`` ``publisher`` (default) or ``sub_id``, ``granularity``
``total`` (default), ``day`` or ``hour``. At most ``GATEWAY_ANALYTICS_MAX_ROWS`` rows;
more and the answer says ``"truncated": true`` (CSV: the header ``X-Truncated: true``).

Rows come from the store's rollups (rollups.py), never from raw events, and the derived
fields (rates, averages, percentiles, earned per ping) are computed here, at read time,
from the sums: sums merge across hours and replicas, ratios do not.

The page is static (publishers.html) and fetches the JSON like any client. Every admin
route is guarded (admin.py); a browser cannot send a Bearer header when it navigates, so
when ``GATEWAY_ADMIN_TOKEN`` is set and the page is asked for without it, the answer is
still ``401`` but its body (for a browser, that asks for HTML) is the same static page,
holding no data, which asks for the token, keeps it in this tab's ``sessionStorage`` and
sends it as ``Authorization: Bearer`` with each fetch of the JSON. The token never goes
into a URL the server sees.
"""

from __future__ import annotations

import csv
import io
import time
from importlib import resources
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import InvalidQuery, LedgerUnavailable, Unauthorized
from gateway.ledger.admin import AdminAuth, guarded, query_times
from gateway.ledger.events import format_at
from gateway.ledger.rollups import Grouped, hour_of, percentile
from gateway.ledger.store import StoreUnavailable
from gateway.ledger.writer import Ledger

DEFAULT_WINDOW_S = 24 * 3600
BY = ("publisher", "sub_id")
GRANULARITY = ("total", "day", "hour")
PAGE = resources.files("gateway.ledger").joinpath("publishers.html").read_bytes()
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "content-security-policy": _CSP,
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}
# CSV cells a spreadsheet would run as a formula start with one of these.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = (
    "period", "publisher_id", "sub_id", "pings", "invalid", "reserved", "no_bid", "repeat",
    "errors", "bid_rate", "payout_offered", "avg_payout", "time_to_bid_ms_p50",
    "time_to_bid_ms_p95", "time_to_bid_ms_p99", "confirmed", "calls", "called_in_time",
    "confirmed_not_called", "converted", "payout_earned", "earned_per_ping",
)  # fmt: skip

_encoder = msgspec.json.Encoder()


class Query(msgspec.Struct, frozen=True):
    since: float
    until: float
    by: str
    granularity: str


def parse_query(params: Any, now: float | None = None) -> Query:
    """The validated parameters; InvalidQuery naming every bad one."""
    problems: dict[str, str] = {}
    now = time.time() if now is None else now
    times = query_times(params, ("from", "to"), problems)
    by = params.get("by", "publisher")
    if by not in BY:
        problems["by"] = "must be publisher or sub_id"
    granularity = params.get("granularity", "total")
    if granularity not in GRANULARITY:
        problems["granularity"] = "must be total, day or hour"
    until = times["to"] if times["to"] is not None else now
    since = times["from"] if times["from"] is not None else until - DEFAULT_WINDOW_S
    if "from" not in problems and "to" not in problems and until < since:
        problems["to"] = "must not be before from"
    if problems:
        raise InvalidQuery(f"invalid parameters: {', '.join(sorted(problems))}", fields=problems)
    return Query(since, until, by, granularity)


def _ratio(num: float, den: float, digits: int = 4) -> float | None:
    return round(num / den, digits) if den else None


def _money(value: float) -> float:
    return round(value, 6)  # sums of floats: no 0.30000000000000004 in a report


def derive(grouped: Grouped, by: str, granularity: str) -> dict[str, Any]:
    """One analytics row with the contract's fields, derived from the summed rollup."""
    period, publisher, sub, r = grouped
    row: dict[str, Any] = {}
    if granularity != "total":
        row["period"] = format_at(period or 0)[:-5] + "Z"  # whole seconds
    row["publisher_id"] = publisher or None
    if by == "sub_id":
        row["sub_id"] = sub or None
    hist = r.upstream_ms_hist
    row.update(
        pings=r.pings,
        invalid=r.invalid,
        reserved=r.reserved,
        no_bid=r.no_bid,
        repeat=r.repeat,
        errors=r.errors,
        bid_rate=_ratio(r.reserved, r.reserved + r.no_bid),
        payout_offered=_money(r.payout_offered),
        avg_payout=_ratio(r.payout_offered, r.reserved, 6),
        time_to_bid_ms={
            "p50": percentile(hist, 0.50),
            "p95": percentile(hist, 0.95),
            "p99": percentile(hist, 0.99),
        },
        confirmed=r.confirmed,
        calls=r.calls,
        called_in_time=r.called_in_time,
        confirmed_not_called=r.confirmed_not_called,
        converted=r.converted,
        payout_earned=_money(r.payout_earned),
        earned_per_ping=_ratio(r.payout_earned, r.pings, 6),
    )
    return row


class PublisherAnalytics:
    """The three routes; reads the ledger store's ``analytics``."""

    def __init__(self, ledger: Ledger, auth: AdminAuth, max_rows: int) -> None:
        self.ledger = ledger
        self.auth = auth
        self.max_rows = max_rows

    async def rows(self, request: Request) -> tuple[Query, list[dict[str, Any]], bool]:
        query = parse_query(request.query_params)
        try:
            grouped = await self.ledger.store.analytics(
                query.since, query.until, query.by, query.granularity, self.max_rows + 1
            )
        except StoreUnavailable:
            raise LedgerUnavailable() from None
        truncated = len(grouped) > self.max_rows
        rows = [derive(g, query.by, query.granularity) for g in grouped[: self.max_rows]]
        return query, rows, truncated

    async def json(self, request: Request) -> Response:
        query, rows, truncated = await self.rows(request)
        body = {
            "from": format_at(hour_of(query.since)),  # rollups are hourly
            "to": format_at(query.until),
            "by": query.by,
            "granularity": query.granularity,
            "truncated": truncated,
            "rows": rows,
        }
        return Response(
            _encoder.encode(body),
            media_type="application/json",
            headers={"cache-control": "no-store"},
        )

    async def csv(self, request: Request) -> Response:
        _, rows, truncated = await self.rows(request)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            flat = {**row, **{f"time_to_bid_ms_{k}": v for k, v in row["time_to_bid_ms"].items()}}
            writer.writerow(_cell(flat.get(c)) for c in CSV_COLUMNS)
        headers = {
            "cache-control": "no-store",
            "content-disposition": 'attachment; filename="publishers.csv"',
        }
        if truncated:
            headers["x-truncated"] = "true"
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)

    async def page(self, request: Request) -> Response:
        try:
            self.auth.check(request)
        except Unauthorized as refused:
            # Still a 401; a browser gets the data-free page, which asks for the token.
            if "text/html" not in request.headers.get("accept", ""):
                raise
            return Response(
                PAGE,
                status_code=401,
                media_type="text/html; charset=utf-8",
                headers={**_PAGE_HEADERS, **refused.headers},
            )
        return Response(PAGE, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA) else value
    return str(value)


def analytics_routes(ledger: Ledger, token: str | None, max_rows: int) -> list[Route]:
    auth = AdminAuth(token)
    routes = PublisherAnalytics(ledger, auth, max_rows)
    return [
        Route("/admin/publishers.json", guarded(auth, routes.json), methods=["GET"]),
        Route("/admin/publishers.csv", guarded(auth, routes.csv), methods=["GET"]),
        Route("/admin/publishers", routes.page, methods=["GET"]),
    ]
