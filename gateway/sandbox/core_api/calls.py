"""The call log, v1 (``/calls``) and v2 (``/api/v2/calls``), with the documented filters.

``sort_by`` is ``created_at`` (default) or ``updated_at``; ``order`` is ``desc``
(default) or ``asc``, except that ``updated_at`` is always newest first, as the reference
warns. ``created_at_start``/``created_at_end`` take RFC 3339 times or dates and bound the
range inclusively (Rails' ``start..end``); a ``+`` sent unencoded in the offset arrives as
a space and is read as ``+``. ``caller`` (E.164, ``%2B`` or a bare ``+``), ``client_afid``,
``client_cid``, ``client_tid`` and ``sub_id`` filter by equality. Bad values get 400.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.responses import Response

from gateway.sandbox.core_api.context import Ctx, phone
from gateway.sandbox.core_api.data import Call

_SPACED_OFFSET = re.compile(r"^(.*\d)\s(\d\d:?\d\d)$")


def parse_time(raw: str) -> datetime | None:
    text = raw.strip()
    spaced = _SPACED_OFFSET.match(text)
    if spaced and "T" in text:
        text = f"{spaced[1]}+{spaced[2]}"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def select(ctx: Ctx) -> list[Call] | Response:
    sort_by = ctx.param("sort_by") or "created_at"
    if sort_by not in ("created_at", "updated_at"):
        return ctx.error(400, "sort_by must be created_at or updated_at")
    order = ctx.param("order") or "desc"
    if order not in ("asc", "desc"):
        return ctx.error(400, "order must be asc or desc")
    calls = ctx.company.calls
    for name in ("created_at_start", "created_at_end"):
        raw = ctx.param(name)
        if raw is None:
            continue
        bound = parse_time(raw)
        if bound is None:
            return ctx.error(
                400, f"{name} must be an RFC 3339 time, e.g. 2016-01-01T00:00:00+00:00"
            )
        if name == "created_at_start":
            calls = [c for c in calls if c.created_at >= bound]
        else:
            calls = [c for c in calls if c.created_at <= bound]
    caller = ctx.param("caller")
    if caller is not None:
        wanted = phone(caller)
        calls = [c for c in calls if c.caller == wanted]
    for param, attr in (
        ("client_afid", "afid"),
        ("client_cid", "cid"),
        ("client_tid", "tid"),
        ("sub_id", "sid"),
    ):
        value = ctx.param(param)
        if value is not None:
            calls = [c for c in calls if getattr(c, attr) == value]
    descending = order == "desc" or sort_by == "updated_at"
    return sorted(calls, key=lambda c: (getattr(c, sort_by), c.uuid), reverse=descending)


async def list_v1(ctx: Ctx) -> Response:
    calls = select(ctx)
    if isinstance(calls, Response):
        return calls
    return ctx.page("calls", "call", [c.v1 for c in calls])


async def list_v2(ctx: Ctx) -> Response:
    calls = select(ctx)
    if isinstance(calls, Response):
        return calls
    return ctx.page("calls", "call", [c.v2 for c in calls])


def _by_uuid(ctx: Ctx) -> Call | None:
    wanted = ctx.path("uuid").lower()
    return next((c for c in ctx.company.calls if c.uuid == wanted), None)


async def show_v1(ctx: Ctx) -> Response:
    call = _by_uuid(ctx)
    return ctx.not_found() if call is None else ctx.one("call", call.v1)


async def show_v2(ctx: Ctx) -> Response:
    call = _by_uuid(ctx)
    return ctx.not_found() if call is None else ctx.one("call", call.v2)
