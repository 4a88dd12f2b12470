"""The reconciliation matcher: its rules on examples, and its promises as properties."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ledger.matching import (
    CALLED,
    LATE_CALL,
    NOT_CALLED,
    Call,
    Outcome,
    Reservation,
    match,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=120)
LATER = T0 + timedelta(days=1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reservation(rid: str, *, caller="c1", number="+18005550100", start=0, ttl=60) -> Reservation:
    return Reservation(rid, caller, number, at(start), at(start + ttl))


def call(uuid: str, *, caller="c1", number="+18005550100", when=10, converted=False, payout=None):
    return Call(uuid, caller, number, at(when), converted, payout)


def test_a_call_in_time_is_called_and_brings_its_payout() -> None:
    got = match(
        [reservation("r1")], [call("k1", converted=True, payout=12.5)], now=LATER, grace=GRACE
    )
    assert got == [Outcome("r1", CALLED, "k1", True, 12.5)]


def test_a_call_after_expiry_within_grace_is_late_and_its_null_payout_is_zero() -> None:
    got = match([reservation("r1")], [call("k1", when=100)], now=LATER, grace=GRACE)
    assert got == [Outcome("r1", LATE_CALL, "k1", False, 0.0)]


def test_no_call_by_expiry_plus_grace_is_not_called_and_before_that_still_open() -> None:
    r = reservation("r1")
    assert match([r], [call("k1", when=181)], now=LATER, grace=GRACE) == [Outcome("r1", NOT_CALLED)]
    assert match([r], [], now=at(179), grace=GRACE) == []
    assert match([r], [], now=at(180), grace=GRACE) == [Outcome("r1", NOT_CALLED)]


def test_a_call_before_the_reservation_or_from_another_caller_or_number_does_not_match() -> None:
    calls = [
        call("early", when=-1),
        call("other-caller", caller="c2"),
        call("other-number", number="+18005550199"),
    ]
    assert match([reservation("r1")], calls, now=LATER, grace=GRACE) == [Outcome("r1", NOT_CALLED)]


def test_one_caller_two_reservations_to_different_numbers_the_number_decides() -> None:
    rs = [reservation("r1", number="+18005550100"), reservation("r2", number="+18005550101")]
    got = match(rs, [call("k1", number="+18005550101")], now=LATER, grace=GRACE)
    assert got == [Outcome("r1", NOT_CALLED), Outcome("r2", CALLED, "k1", False, 0.0)]


def test_two_calls_to_one_reservation_the_first_takes_it() -> None:
    got = match(
        [reservation("r1")], [call("k2", when=20), call("k1", when=10)], now=LATER, grace=GRACE
    )
    assert got == [Outcome("r1", CALLED, "k1", False, 0.0)]


def test_a_call_prefers_a_reservation_it_is_in_time_for_then_the_latest() -> None:
    # r1 expired at 60 (the call at 70 is late for it); r2 (at 30) and r3 (at 50) are live.
    rs = [
        reservation("r1", start=0, ttl=60),
        reservation("r2", start=30, ttl=60),
        reservation("r3", start=50, ttl=60),
    ]
    got = match(rs, [call("k1", when=70)], now=LATER, grace=GRACE)
    assert got == [
        Outcome("r1", NOT_CALLED),
        Outcome("r2", NOT_CALLED),
        Outcome("r3", CALLED, "k1", False, 0.0),
    ]


def test_calls_an_earlier_pass_took_match_nothing_again() -> None:
    got = match(
        [reservation("r1")], [call("k1")], now=LATER, grace=GRACE, taken_calls=frozenset({"k1"})
    )
    assert got == [Outcome("r1", NOT_CALLED)]


# Properties over small worlds: few callers and numbers, so collisions (the hard cases) abound.
callers = st.sampled_from(["c1", "c2"])
numbers = st.sampled_from(["+18005550100", "+18005550101"])
seconds = st.integers(min_value=0, max_value=400)

reservations_st = st.lists(
    st.builds(
        lambda i, c, n, s, ttl: Reservation(f"r{i:03}", c, n, at(s), at(s + ttl)),
        st.integers(0, 999),
        callers,
        numbers,
        seconds,
        st.integers(1, 120),
    ),
    max_size=12,
    unique_by=lambda r: r.request_id,
)
calls_st = st.lists(
    st.builds(
        lambda i, c, n, s, conv, pay: Call(f"k{i:03}", c, n, at(s), conv, pay),
        st.integers(0, 999),
        callers,
        numbers,
        seconds,
        st.booleans(),
        st.none() | st.floats(0, 100, allow_nan=False),
    ),
    max_size=12,
    unique_by=lambda c: c.uuid,
)


@settings(max_examples=300, deadline=None)
@given(reservations_st, calls_st, st.integers(0, 600), st.randoms(use_true_random=False))
def test_properties(rs: list[Reservation], cs: list[Call], now_s: int, rnd: random.Random) -> None:
    now = at(now_s)
    got = match(rs, cs, now=now, grace=GRACE)
    by_id = {r.request_id: r for r in rs}
    calls = {c.uuid: c for c in cs}

    # Each reservation ends in at most one outcome, and exactly one once its grace is over.
    ids = [o.request_id for o in got]
    assert len(ids) == len(set(ids))
    for r in rs:
        final = now >= r.expires_at + GRACE
        assert (r.request_id in ids) or not final

    # Each call matches at most one reservation, and only one it can follow.
    used = [o.call_uuid for o in got if o.call_uuid is not None]
    assert len(used) == len(set(used))
    for o in got:
        r = by_id[o.request_id]
        if o.call_outcome == NOT_CALLED:
            assert o.call_uuid is None
            continue
        c = calls[o.call_uuid]
        assert (c.caller, c.number) == (r.caller, r.inbound_number)
        assert r.at <= c.created_at <= r.expires_at + GRACE
        assert o.call_outcome == (CALLED if c.created_at <= r.expires_at else LATE_CALL)
        assert o.payout_earned == (c.payout or 0.0)

    # A reservation left not_called had no unmatched call it could have taken.
    for o in got:
        if o.call_outcome != NOT_CALLED:
            continue
        r = by_id[o.request_id]
        for c in cs:
            if c.uuid in used:
                continue
            fits = (c.caller, c.number) == (r.caller, r.inbound_number)
            assert not (fits and r.at <= c.created_at <= r.expires_at + GRACE)

    # The order reservations and calls (pages) arrive in does not matter.
    shuffled_rs, shuffled_cs = list(rs), list(cs)
    rnd.shuffle(shuffled_rs)
    rnd.shuffle(shuffled_cs)
    assert match(shuffled_rs, shuffled_cs, now=now, grace=GRACE) == got

    # Calls an earlier pass took are never matched again.
    taken = frozenset(list(calls)[: len(calls) // 2])
    again = match(rs, cs, now=now, grace=GRACE, taken_calls=taken)
    assert not {o.call_uuid for o in again} & taken
