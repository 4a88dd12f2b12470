"""``GET /api/v1/reports.json``: call statistics faceted by publisher, buyer, campaign,
number, day, tag value or caller state, computed from the seeded calls.

Validation, as the reference states it: ``domain`` is ``calls``; ``facet`` is one of
the seven (``state`` since the 2026-05 reference); ``created_at_start`` and
``created_at_end`` are required dates (``YYYY-MM-DD`` or RFC 3339), the start strictly
before the end, and the two less than two calendar years apart (end < start + 2 years).
``page``/``per_page`` (default 25, at most 1000) page the facet rows; ``count`` is the
rows on this page, ``count_total`` all rows. With
``facet=tag_value`` the rows are tag keys, or with ``tag_value_key`` that key's values;
only indexed tag keys report anything, as the reference explains.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from starlette.responses import Response

from gateway.sandbox.api.call_log import parse_time
from gateway.sandbox.api.context import Ctx
from gateway.sandbox.api.data import Call
from gateway.sandbox.api.paging import PageError, page_number, page_of
from gateway.sandbox.api.render import render

FACETS = ("publisher", "buyer", "campaign", "number", "daily", "tag_value", "state")
MAX_PER_PAGE = 1000


def add_years(ts: datetime, years: int) -> datetime:
    try:
        return ts.replace(year=ts.year + years)
    except ValueError:  # 29 February
        return ts.replace(year=ts.year + years, month=3, day=1)


def validate(params: dict[str, str]) -> tuple[dict[str, str], datetime | None, datetime | None]:
    """(problems by parameter, start, end) for the report parameters."""
    problems: dict[str, str] = {}
    if params.get("domain") != "calls":
        problems["domain"] = "domain is required and must be 'calls'"
    if params.get("facet") not in FACETS:
        problems["facet"] = f"facet is required and must be one of {', '.join(FACETS)}"
    bounds: dict[str, datetime | None] = {}
    for name in ("created_at_start", "created_at_end"):
        raw = params.get(name)
        bounds[name] = parse_time(raw) if raw else None
        if bounds[name] is None:
            problems[name] = f"{name} is required and must be a date (YYYY-MM-DD or RFC 3339)"
    start, end = bounds["created_at_start"], bounds["created_at_end"]
    if start is not None and end is not None:
        if start >= end:
            problems["created_at_end"] = "created_at_start must be before created_at_end"
        elif end >= add_years(start, 2):
            problems["created_at_end"] = (
                "created_at_start and created_at_end must be less than 2 years apart"
            )
    return problems, start, end


def _keys(
    call: Call, facet: str, tag_key: str | None, indexed: tuple[str, ...]
) -> list[tuple[Any, str]]:
    v2 = call.v2
    if facet == "publisher":
        return [(v2["afid"], v2["affiliate_name"] or "No Publisher")]
    if facet == "buyer":  # "Alex Johnson - +14155551234", as the reference shows
        if v2["target_id"] is None:
            return [(None, "No Buyer")]
        name, number = v2["target_name"], v2["dialed_number"]
        return [(v2["target_id"], name if name.endswith(number) else f"{name} - {number}")]
    if facet == "state":
        return [(v2["caller_state"], v2["caller_state"] or "Unknown")]
    if facet == "campaign":
        return [(v2["cid"], v2["campaign_name"])]
    if facet == "number":
        return [(v2["number"], v2["number"])]
    if facet == "daily":
        day = call.created_at.date().isoformat()
        return [(day, day)]
    tags: dict[str, str] = v2["tags"]
    if tag_key is None:
        return [(k, k) for k in tags if k in indexed]
    if tag_key not in indexed or tag_key not in tags:
        return []
    return [(tags[tag_key], tags[tag_key])]


def _row(key: Any, name: str, calls: list[Call], all_duration: int) -> dict[str, Any]:
    n = len(calls)
    rows = [c.v2 for c in calls]
    repeat = float(sum(r["repeat"] for r in rows))
    converted = float(sum(r["converted"] for r in rows))
    revenue = round(sum(r["revenue"] or 0.0 for r in rows), 2)
    payout = round(sum(r["payout"] or 0.0 for r in rows), 2)
    cost = round(sum(float(r["total_cost"]) for r in rows), 2)
    duration = sum(r["total_duration"] for r in rows)
    connected = sum(r["dialed_call_duration"] for r in rows)
    return {
        "id": key,
        "facet_name": name,
        "total_calls": n,
        "repeat_count": repeat,
        "duplicate_count": 0.0,
        "unique_calls": n - repeat,
        "converted_count": converted,
        "revenue": revenue,
        "payout": payout,
        "cost": cost,
        "total_duration": duration / n,
        "total_duration_percent": duration / all_duration if all_duration else 0.0,
        "rescued_count": 0.0,
        "rescued_revenue": 0.0,
        "connected_duration": connected / n,
        "connected_duration_percent": connected / duration if duration else 0.0,
        # Calls active right now (the buyer report's use of it, per the reference).
        "in_progress_count": float(sum(r["status"] == "in-progress" for r in rows)),
        "profit": round(revenue - payout - cost, 2),
        "repeat_count_percent": repeat / n * 100,
        "duplicate_count_percent": 0,
        "converted_count_percent": converted / n * 100,
        "rescued_count_percent": 0,
        "epc": round(revenue / n, 2),
        "cpc": round(payout / n, 2),
    }


async def report(ctx: Ctx) -> Response:
    params = {k: v for k, v in ctx.request.query_params.items() if v != ""}
    problems, start, end = validate(params)
    if problems:
        body = {"error": "; ".join(problems.values()), "fields": problems}
        return render("json", "hash", body, status=400)
    assert start is not None
    assert end is not None
    try:
        page = page_number(ctx.request)
        per_page = page_number(ctx.request, "per_page") if "per_page" in params else 25
    except PageError as exc:
        return ctx.error(400, str(exc))
    per_page = min(per_page, MAX_PER_PAGE)
    facet, tag_key = params["facet"], params.get("tag_value_key")
    calls = [c for c in ctx.company.calls if start <= c.created_at <= end]
    groups: dict[Any, tuple[str, list[Call]]] = {}
    members: dict[Any, list[Call]] = defaultdict(list)
    for call in calls:
        for key, name in _keys(call, facet, tag_key, ctx.company.indexed_tags):
            groups.setdefault(key, (name, members[key]))
            members[key].append(call)
    all_duration = sum(c.v2["total_duration"] for c in calls)
    rows = [_row(key, name, group, all_duration) for key, (name, group) in groups.items()]
    rows.sort(key=lambda r: (-r["total_calls"], str(r["id"])))
    shown = page_of(rows, page, per_page)
    return render("json", "hash", {"count": len(shown), "count_total": len(rows), "data": shown})
