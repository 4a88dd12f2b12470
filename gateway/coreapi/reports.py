"""Validation of ``/api/v1/reports`` queries before they cost an upstream request.

The reference makes ``domain`` (only ``calls``), ``facet`` and both dates mandatory and
requires ``created_at_start`` before ``created_at_end``, less than two years apart. A
report over a bad range is an expensive way to learn that, so the gateway answers it
with a 400 naming each offending parameter.

Dates are ``YYYY-MM-DD`` or RFC 3339 date-times. An unencoded ``+`` in an offset arrives
as a space (``...T00:00:00 00:00``), exactly as for caller numbers, and is read as ``+``.
A date without an offset is taken as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl

from gateway.errors import InvalidQuery

DOMAINS = ("calls",)
FACETS = ("publisher", "buyer", "campaign", "number", "daily", "tag_value", "state")
MAX_YEARS = 2

_SPACE_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def parse_instant(value: str) -> datetime | None:
    """A date or RFC 3339 date-time as an aware datetime; None if it is neither."""
    text = _SPACE_OFFSET.sub(r"\1+\2", value.strip())
    if len(text) == 10:
        try:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        except ValueError:
            return None
    if "T" not in text and "t" not in text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _add_years(instant: datetime, years: int) -> datetime:
    try:
        return instant.replace(year=instant.year + years)
    except ValueError:  # 29 February
        return instant.replace(year=instant.year + years, day=28)


def validate_report_query(query_string: bytes) -> None:
    """Raise a 400 GatewayError naming every bad parameter; return quietly otherwise."""
    params: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        params[name] = value  # the last occurrence wins, as Rails reads it
    problems: dict[str, str] = {}

    domain = params.get("domain")
    if not domain:
        problems["domain"] = "required; one of: calls"
    elif domain not in DOMAINS:
        problems["domain"] = "must be one of: calls"

    facet = params.get("facet")
    if not facet:
        problems["facet"] = "required; one of: " + ", ".join(FACETS)
    elif facet not in FACETS:
        problems["facet"] = "must be one of: " + ", ".join(FACETS)

    instants: dict[str, datetime] = {}
    for name in ("created_at_start", "created_at_end"):
        raw = params.get(name)
        if not raw:
            problems[name] = "required (YYYY-MM-DD or an RFC 3339 date-time)"
            continue
        parsed = parse_instant(raw)
        if parsed is None:
            problems[name] = "not a date (YYYY-MM-DD) or RFC 3339 date-time"
        else:
            instants[name] = parsed
    start, end = instants.get("created_at_start"), instants.get("created_at_end")
    if start is not None and end is not None:
        if start >= end:
            problems["created_at_end"] = "must be after created_at_start"
        elif end >= _add_years(start, MAX_YEARS):
            problems["created_at_end"] = "must be less than 2 years after created_at_start"

    for name in ("page", "per_page"):
        raw = params.get(name)
        if raw is not None and not (raw.isascii() and raw.isdigit() and int(raw) > 0):
            problems[name] = "must be a positive whole number"

    if problems:
        names = ", ".join(sorted(problems))
        raise InvalidQuery(f"invalid report parameters: {names}", fields=problems)
