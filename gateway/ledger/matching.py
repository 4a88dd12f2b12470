"""Reconciliation's matcher: which of Retreaver's calls followed which reservation.

A pure function, kept apart from the pass that reads calls and writes the ledger, so its
rules can be property-tested on their own (each call matches at most one reservation, each
reservation ends in exactly one outcome, the order calls arrive in does not matter).

The rules (the operator docs, "Reconciliation", say the same in words):

- A call can follow a reservation when it comes from the same caller (compared as keyed
  digests, never numbers), went to the reservation's ``inbound_number``, and began within
  ``[at, expires_at + grace]``.
- Calls are taken oldest first (``created_at``, then ``uuid`` to break ties), and each takes
  one reservation it can follow, preferring one it began in time (by ``expires_at``) over
  one it is late for, then the most recent reservation (latest ``at``, then ``request_id``):
  the bid the caller most plausibly acted on. A reservation is taken by at most one call:
  the first; a second call to the same number is left for another reservation or none.
- A reservation with a call ends ``called`` (began by ``expires_at``) or ``late_call``
  (after it, within the grace); one without a call ends ``not_called`` once
  ``expires_at + grace`` has passed, and is still open (no outcome) before that.
- A matched call brings its ``uuid``, ``converted`` and ``payout`` (null payout: 0).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

import msgspec

CALLED = "called"
LATE_CALL = "late_call"
NOT_CALLED = "not_called"
CALL_OUTCOMES = (CALLED, LATE_CALL, NOT_CALLED)


class Reservation(msgspec.Struct, frozen=True):
    """A reservation event still waiting for its call outcome."""

    request_id: str
    caller: str
    inbound_number: str
    at: datetime
    expires_at: datetime


class Call(msgspec.Struct, frozen=True):
    """One of Retreaver's calls, its caller already digested."""

    uuid: str
    caller: str
    number: str
    created_at: datetime
    converted: bool = False
    payout: float | None = None


class Outcome(msgspec.Struct, frozen=True):
    """How one reservation ended."""

    request_id: str
    call_outcome: str
    call_uuid: str | None = None
    converted: bool | None = None
    payout_earned: float | None = None


def match(
    reservations: Iterable[Reservation],
    calls: Iterable[Call],
    *,
    now: datetime,
    grace: timedelta,
    taken_calls: frozenset[str] = frozenset(),
) -> list[Outcome]:
    """The outcome of every reservation that has one by ``now``, sorted by request id.

    ``taken_calls`` are uuids of calls an earlier pass already matched: they match nothing
    again (the pass re-reads an overlap window of calls on purpose).
    """
    by_line: dict[tuple[str, str], list[Reservation]] = defaultdict(list)
    for reservation in reservations:
        by_line[reservation.caller, reservation.inbound_number].append(reservation)
    taken: dict[str, Call] = {}
    seen: set[str] = set(taken_calls)
    for call in sorted(calls, key=lambda c: (c.created_at, c.uuid)):
        if call.uuid in seen:
            continue
        seen.add(call.uuid)
        best: tuple[bool, datetime, str] | None = None
        for reservation in by_line.get((call.caller, call.number), ()):
            if reservation.request_id in taken:
                continue
            if not reservation.at <= call.created_at <= reservation.expires_at + grace:
                continue
            rank = (
                call.created_at <= reservation.expires_at,
                reservation.at,
                reservation.request_id,
            )
            if best is None or rank > best:
                best = rank
        if best is not None:
            taken[best[2]] = call
    outcomes = []
    for line in by_line.values():
        for reservation in line:
            call = taken.get(reservation.request_id)
            if call is not None:
                in_time = call.created_at <= reservation.expires_at
                outcomes.append(
                    Outcome(
                        reservation.request_id,
                        CALLED if in_time else LATE_CALL,
                        call.uuid,
                        call.converted,
                        call.payout if call.payout is not None else 0.0,
                    )
                )
            elif now >= reservation.expires_at + grace:
                outcomes.append(Outcome(reservation.request_id, NOT_CALLED))
    outcomes.sort(key=lambda o: o.request_id)
    return outcomes
