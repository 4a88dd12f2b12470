"""What settling outcomes on reservation events adds to the rollups, store-independent.

Both stores settle the same way: an outcome is written on its reservation event only
while that event has none (``call_outcome IS NULL``), so a pass that runs twice, or is
cut short and re-run, changes nothing the second time; only the events actually changed
are summed into :class:`Reconciled` rows, one per (hour of the reservation's ``at``,
publisher, sub-ID), for the rollups' ``add_reconciled``.

:class:`Reconciled` is the rollups' own (``gateway/ledger/rollups.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from gateway.ledger.matching import CALLED, LATE_CALL, NOT_CALLED
from gateway.ledger.rollups import Reconciled

HOUR_S = 3600


class Changed(msgspec.Struct, frozen=True):
    """One reservation event a settle actually changed."""

    at: float  # the reservation's epoch seconds
    publisher_id: str | None
    sub_id: str | None
    call_outcome: str
    converted: bool | None
    payout_earned: float | None
    confirmed: bool


class Settled(msgspec.Struct, frozen=True):
    changed: int
    items: list[Reconciled]
    confirmed_not_called: int
    # (publisher, call outcome) of each confirmed reservation settled: the confirm guard's food.
    confirmed: list[tuple[str | None, str]] = []


def hour_of(at: float) -> float:
    return float(int(at // HOUR_S) * HOUR_S)


def summarize(changed: Iterable[Changed]) -> Settled:
    """Sum changed events into one :class:`Reconciled` per (hour, publisher, sub-ID)."""
    sums: dict[tuple[float, str | None, str | None], list[Any]] = {}
    count = alarms = 0
    confirmed: list[tuple[str | None, str]] = []
    for item in changed:
        count += 1
        if item.confirmed:
            confirmed.append((item.publisher_id, item.call_outcome))
        key = (hour_of(item.at), item.publisher_id, item.sub_id)
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = [0, 0, 0, 0, 0.0]
        if item.call_outcome in (CALLED, LATE_CALL):
            acc[0] += 1
            if item.call_outcome == CALLED:
                acc[1] += 1
            if item.converted:
                acc[3] += 1
            acc[4] += item.payout_earned or 0.0
        elif item.call_outcome == NOT_CALLED and item.confirmed:
            acc[2] += 1
            alarms += 1
    items = [
        Reconciled(hour, publisher, sub_id, a[0], a[1], a[2], a[3], a[4])
        for (hour, publisher, sub_id), a in sorted(
            sums.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2] or "")
        )
    ]
    return Settled(count, items, alarms, confirmed)


async def add_reconciled(store: Any, items: list[Reconciled]) -> None:
    """Hand ``items`` to the store's rollups (both stores keep them)."""
    if items:
        await store.add_reconciled(items)
