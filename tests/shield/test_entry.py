"""What is stored, for how long, and what a shielded answer looks like (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.shield.entry import (
    confirmed_answer,
    make_entry,
    parse_expires_at,
    shielded_body,
)
from gateway.wire.answer import UpstreamAnswer

NOW = 1_800_000_000.0


def iso(seconds: float) -> str:
    ts = datetime.fromtimestamp(seconds, UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def reservation(expires_at: object = None, **extra: object) -> UpstreamAnswer:
    body: dict[str, object] = {"uuid": "C6E4CE37-9b49-46af-bd8e-16cb7753499d", "status": "reserved"}
    if expires_at is not None:
        body["expires_at"] = expires_at
    body.update(extra)
    return UpstreamAnswer(200, msgspec.json.encode(body))


def test_reservation_is_stored_until_expires_at() -> None:
    entry = make_entry(reservation(iso(NOW + 60)), NOW, 3600)
    assert entry is not None
    assert entry.expires_ms == int((NOW + 60) * 1000)
    assert entry.uuid == "c6e4ce37-9b49-46af-bd8e-16cb7753499d"
    body = msgspec.json.decode(entry.answer.body)
    assert body["retreaver_ping_shield"] is True
    assert body["status"] == "reserved"


def test_ttl_is_capped_by_max_ttl() -> None:
    entry = make_entry(reservation(iso(NOW + 86400)), NOW, 30)
    assert entry is not None
    assert entry.expires_ms == int((NOW + 30) * 1000)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(reservation(), id="no-expires_at"),
        pytest.param(UpstreamAnswer(200, b'{"status":"no-target"}'), id="no-target"),
        pytest.param(reservation(iso(NOW + 60), status="no-target"), id="no-target-expires_at"),
        pytest.param(reservation(iso(NOW + 60), status="expired"), id="other-status"),
        pytest.param(reservation(iso(NOW + 60), status=None), id="null-status"),
        pytest.param(
            UpstreamAnswer(200, msgspec.json.encode({"uuid": "u", "expires_at": iso(NOW + 60)})),
            id="no-status",
        ),
        pytest.param(reservation(iso(NOW - 1)), id="expired"),
        pytest.param(reservation(iso(NOW)), id="expires-now"),
        pytest.param(reservation("tomorrow"), id="unreadable-expires_at"),
        pytest.param(reservation(NOW + 60), id="numeric-expires_at"),
        pytest.param(UpstreamAnswer(200, b"<html>oops</html>", "text/html"), id="not-json"),
        pytest.param(UpstreamAnswer(200, b'["a"]'), id="json-array"),
        pytest.param(
            UpstreamAnswer(500, msgspec.json.encode({"expires_at": iso(NOW + 60)})), id="5xx"
        ),
        pytest.param(
            UpstreamAnswer(422, msgspec.json.encode({"expires_at": iso(NOW + 60)})), id="4xx"
        ),
    ],
)
def test_never_stored(answer: UpstreamAnswer) -> None:
    assert make_entry(answer, NOW, 3600) is None


def test_confirmed_reservation_is_stored() -> None:
    entry = make_entry(reservation(iso(NOW + 60), status="confirmed"), NOW, 3600)
    assert entry is not None
    assert msgspec.json.decode(entry.answer.body)["status"] == "confirmed"


def test_naive_timestamp_is_utc_and_offsets_are_honoured() -> None:
    assert parse_expires_at("2024-10-28T12:08:49.880") == parse_expires_at(
        "2024-10-28T12:08:49.880Z"
    )
    assert parse_expires_at("2024-10-28T14:08:49.880+02:00") == parse_expires_at(
        "2024-10-28T12:08:49.880Z"
    )
    assert parse_expires_at("2024-10-28T12:08:49.880Z") == pytest.approx(1730117329.88)


def test_splice_keeps_upstream_bytes_and_appends_the_field() -> None:
    body = b'{"uuid": "x",  "retreaver_payout": 5.0}\n'
    out = shielded_body(body, msgspec.json.decode(body))
    assert out == b'{"uuid": "x",  "retreaver_payout": 5.0,"retreaver_ping_shield":true}'


def test_splice_of_empty_object_and_existing_field() -> None:
    assert shielded_body(b"{ }", {}) == b'{"retreaver_ping_shield":true}'
    body = b'{"a":1,"retreaver_ping_shield":false}'
    out = msgspec.json.decode(shielded_body(body, msgspec.json.decode(body)))
    assert out == {"a": 1, "retreaver_ping_shield": True}


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.floats(allow_nan=False, allow_infinity=False),
)


@given(st.dictionaries(st.text(max_size=10), json_scalars, max_size=6))
def test_shielded_body_is_the_same_object_plus_the_flag(data: dict[str, object]) -> None:
    body = msgspec.json.encode(data)
    out = msgspec.json.decode(shielded_body(body, msgspec.json.decode(body)))
    assert out == {**data, "retreaver_ping_shield": True}


@given(
    ttl=st.floats(min_value=0.002, max_value=10 * 86400),
    max_ttl=st.integers(min_value=1, max_value=7 * 86400),
)
def test_stored_lifetime_is_min_of_expires_at_and_max_ttl(ttl: float, max_ttl: int) -> None:
    entry = make_entry(reservation(iso(NOW + ttl)), NOW, max_ttl)
    expires_at = parse_expires_at(iso(NOW + ttl))
    assert expires_at is not None
    if expires_at <= NOW:
        assert entry is None
        return
    assert entry is not None
    assert entry.expires_ms <= expires_at * 1000 + 1
    assert entry.expires_ms <= (NOW + max_ttl) * 1000 + 1
    assert entry.expires_ms > NOW * 1000


def test_confirmed_answer_replaces_and_no_target_drops() -> None:
    confirmed = UpstreamAnswer(200, b'{"uuid":"u","status":"confirmed"}')
    replacement = confirmed_answer(confirmed)
    assert replacement is not None
    assert msgspec.json.decode(replacement.body) == {
        "uuid": "u",
        "status": "confirmed",
        "retreaver_ping_shield": True,
    }
    assert confirmed_answer(UpstreamAnswer(200, b'{"uuid":"u","status":"no-target"}')) is None
    assert confirmed_answer(UpstreamAnswer(404, b'{"error":"not found"}')) is None


def test_expiry_window_edges() -> None:
    assert make_entry(reservation(iso(NOW + 0.5)), NOW, 3600) is not None
    later = (datetime.fromtimestamp(NOW, UTC) + timedelta(milliseconds=1)).isoformat()
    assert make_entry(reservation(later), NOW, 3600) is not None
