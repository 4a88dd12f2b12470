"""The call log: v1 (``/calls``, ``/api/v1/calls``), v2, v3 and v4 (``/api/vN/calls``), with
the documented filters, 25 a page or ``per_page`` (1 to 100, see :mod:`.paging`).

v3 is v2 with ``number`` as an object (``{"number": ..., "name": ...}``); v4 is v3 with
``campaign_id`` replaced by ``campaign`` (``{"id": ..., "name": ...}``), as the 2026-05
reference shows. From v2 on, ``call_flow_events=true`` adds the call's flow events (the
reference names the parameter but shows no example; the shape here is the sandbox's).

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

from gateway.sandbox.api.context import Ctx, Handler, phone
from gateway.sandbox.api.data import Call, Record

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
    return ctx.page("calls", "call", [c.v1 for c in calls], sized=True)


def _flow_events(call: Call) -> list[Record]:
    v2 = call.v2
    events = [("call_started", v2["start_time"]), ("ivr_entered", v2["start_time"])]
    if v2["forwarded_time"]:
        events.append(("forwarded", v2["forwarded_time"]))
    events.append(("call_ended", v2["end_time"]))
    return [{"call_flow_event": {"event": name, "occurred_at": at}} for name, at in events]


def rendered(ctx: Ctx, call: Call, version: int) -> Record:
    """A call as ``/api/v{version}/calls`` renders it (2, 3 or 4)."""
    record = dict(call.v2)
    if version >= 3:
        name = record["affiliate_name"] or record["campaign_name"]
        record["number"] = {"number": record["number"], "name": f"{name} Number"}
    if version >= 4:
        campaign_id = record.pop("campaign_id")
        record["campaign"] = {"id": str(campaign_id), "name": record["campaign_name"]}
    if (ctx.param("call_flow_events") or "").lower() == "true":
        record["call_flow_events"] = _flow_events(call)
    return record


def list_versioned(version: int) -> Handler:
    async def list_calls(ctx: Ctx) -> Response:
        calls = select(ctx)
        if isinstance(calls, Response):
            return calls
        return ctx.page("calls", "call", [rendered(ctx, c, version) for c in calls], sized=True)

    list_calls.__name__ = f"list_v{version}"
    return list_calls


def show_versioned(version: int) -> Handler:
    async def show_call(ctx: Ctx) -> Response:
        call = _by_uuid(ctx)
        return ctx.not_found() if call is None else ctx.one("call", rendered(ctx, call, version))

    show_call.__name__ = f"show_v{version}"
    return show_call


def _by_uuid(ctx: Ctx) -> Call | None:
    wanted = ctx.path("uuid").lower()
    return next((c for c in ctx.company.calls if c.uuid == wanted), None)


async def show_v1(ctx: Ctx) -> Response:
    call = _by_uuid(ctx)
    return ctx.not_found() if call is None else ctx.one("call", call.v1)
