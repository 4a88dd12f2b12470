"""The outcome vocabulary: the mapping of an answer to its code, table by table."""

from __future__ import annotations

import pytest

from gateway.ledger import outcomes as o
from gateway.observe.results import BYPASS, COALESCED, ERROR, HIT, MISS, NONE


@pytest.mark.parametrize(
    ("route", "status", "from_upstream", "body_status", "shield", "expected"),
    [
        (o.RESERVE, 200, True, "reserved", MISS, o.RESERVED),
        (o.RESERVE, 200, True, "reserved", NONE, o.RESERVED),
        (o.RESERVE, 200, True, "reserved", ERROR, o.RESERVED),
        (o.RESERVE, 200, True, "reserved", BYPASS, o.RESERVED),
        (o.RESERVE, 200, True, "no-target", MISS, o.NO_BID),
        (o.RESERVE, 200, True, None, MISS, o.NO_BID),
        (o.RESERVE, 201, True, "something-new", MISS, o.NO_BID),
        (o.RESERVE, 200, True, "reserved", HIT, o.REPEAT),
        (o.RESERVE, 200, True, "reserved", COALESCED, o.REPEAT),
        (o.CONFIRM, 200, True, "confirmed", None, o.CONFIRMED),
        (o.CONFIRM, 200, True, "no-target", None, o.NO_BID),
        (o.RESERVE, 200, True, "confirmed", MISS, o.NO_BID),
        (o.DATA_WRITING, 200, True, None, None, o.WRITTEN),
        (o.DATA_WRITING_KEY, 200, True, None, None, o.WRITTEN),
        (o.RESERVE, 422, True, None, MISS, o.UPSTREAM_REFUSED),
        (o.RESERVE, 500, True, None, MISS, o.UPSTREAM_REFUSED),
        (o.DATA_WRITING, 404, True, None, None, o.UPSTREAM_REFUSED),
        (o.RESERVE, 400, False, None, None, o.INVALID),
        (o.RESERVE, 413, False, None, None, o.INVALID),
        (o.RESERVE, 415, False, None, None, o.INVALID),
        (o.RESERVE, 422, False, None, None, o.INVALID),
        (o.CONFIRM, 404, False, None, None, o.INVALID),
        (o.RESERVE, 403, False, None, None, o.FORBIDDEN),
        (o.RESERVE, 429, False, None, None, o.RATE_LIMITED),
        (o.RESERVE, 503, False, None, None, o.SHED),
        (o.RESERVE, 504, False, None, MISS, o.UPSTREAM_TIMEOUT),
        (o.RESERVE, 502, False, None, MISS, o.UPSTREAM_ERROR),
        (o.RESERVE, 500, False, None, None, o.UPSTREAM_ERROR),
    ],
)
def test_outcome_of(
    route: str,
    status: int,
    from_upstream: bool,
    body_status: str | None,
    shield: str | None,
    expected: str,
) -> None:
    got = o.outcome_of(
        route, status, from_upstream=from_upstream, body_status=body_status, shield_result=shield
    )
    assert got == expected


def test_every_code_is_documented_once_and_leg_codes_are_separate() -> None:
    assert len(set(o.OUTCOMES)) == len(o.OUTCOMES) == 15
    assert {o.LOST, o.LATE, o.BELOW_FLOOR}.isdisjoint(code for code, _ in o.ANSWER_OUTCOMES)
    assert all(value.decode() == code for code, value in o.HEADER_VALUES.items())


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("POST", "/rtbs.json", o.RESERVE),
        ("GET", "/rtbs.json", None),
        ("PUT", "/rtbs/c6e4ce37-9b49-46af-bd8e-16cb7753499d.json", o.CONFIRM),
        ("PATCH", "/rtbs/not-a-uuid.json", o.CONFIRM),
        ("POST", "/rtbs/x.json", None),
        ("PUT", "/rtbs/a/b.json", None),
        ("POST", "/data_writing", o.DATA_WRITING),
        ("GET", "/data_writing", o.DATA_WRITING),
        ("GET", "/data_writing/abc", o.DATA_WRITING_KEY),
        ("POST", "/data_writing/abc", None),
        ("GET", "/api/v2/calls.json", None),
        ("GET", "/admin/ledger.ndjson", None),
    ],
)
def test_publisher_route(method: str, path: str, route: str | None) -> None:
    assert o.publisher_route(method, path) == route


@pytest.mark.parametrize(
    ("body", "status", "payout"),
    [
        (b'{"uuid":"u","status":"reserved","retreaver_payout":5.0}', "reserved", 5.0),
        (b'{"status":"reserved","retreaver_payout":"5.0"}', "reserved", None),
        (b'{"status":7}', None, None),
        (b"<html>proxy error</html>", None, None),
        (b"[1,2]", None, None),
        (b"", None, None),
        (b"\xff\xfe", None, None),
        (b"[" * 100_000, None, None),
    ],
)
def test_parse_reservation_never_raises(body: bytes, status: str | None, payout: float | None):
    parsed = o.parse_reservation(body)
    assert (parsed.status if parsed else None) == status
    assert (parsed.retreaver_payout if parsed else None) == payout
