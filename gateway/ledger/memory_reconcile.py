"""Reconciliation's reads and writes on the in-process ledger (memory.py's ring).

The ring holds at most ``GATEWAY_LEDGER_MEMORY_MAX_EVENTS`` rows, so a pass scans it
whole: 100,000 rows cost a few tens of milliseconds, off the ping path (the pass runs in
its own task and never holds anything a ping waits for). Rows are mutable structs: the
outcome is written on the row in place, so the export shows it at once. A reservation
evicted from the ring before its call arrived is simply gone, as the ring's docs say.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.ledger.events import Row
from gateway.ledger.matching import Outcome
from gateway.ledger.outcomes import CONFIRM, CONFIRMED, RESERVE, RESERVED
from gateway.ledger.settling import Changed, Settled, summarize
from gateway.ledger.store import Stamped


def _is_open(row: Row) -> bool:
    return (
        row.leg == 0
        and row.route == RESERVE
        and row.outcome == RESERVED
        and row.call_outcome is None
    )


def open_reservations(rows: Iterable[Stamped], until: float, limit: int) -> list[Row]:
    """Reservation events still without a call outcome, ``at <= until``, oldest first."""
    found: list[Row] = []
    for at, row in rows:
        if at > until or len(found) >= limit:
            break
        if _is_open(row):
            found.append(row)
    return found


def taken_calls(rows: Iterable[Stamped], uuids: Iterable[str]) -> frozenset[str]:
    """Which of ``uuids`` an earlier pass already matched to a reservation."""
    wanted = set(uuids)
    return frozenset(
        row.call_uuid for _, row in rows if row.call_uuid is not None and row.call_uuid in wanted
    )


def settle(rows: list[Stamped], outcomes: list[Outcome]) -> Settled:
    """Write each outcome on its open reservation; sum what changed (see settling.py)."""
    by_id = {o.request_id: o for o in outcomes}
    confirmed: set[str] = set()
    targets: list[tuple[float, Row, Outcome]] = []
    for at, row in rows:
        if row.route == CONFIRM and row.outcome == CONFIRMED and row.reservation_uuid:
            confirmed.add(row.reservation_uuid)
        elif by_id and _is_open(row):
            outcome = by_id.get(row.request_id)
            if outcome is not None:
                targets.append((at, row, outcome))
    changed = []
    for at, row, outcome in targets:
        row.call_outcome = outcome.call_outcome
        row.call_uuid = outcome.call_uuid
        row.converted = outcome.converted
        row.payout_earned = outcome.payout_earned
        changed.append(
            Changed(
                at,
                row.publisher_id,
                row.sub_id,
                outcome.call_outcome,
                outcome.converted,
                outcome.payout_earned,
                row.reservation_uuid in confirmed,
            )
        )
    return summarize(changed)
