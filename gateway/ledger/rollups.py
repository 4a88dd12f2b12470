"""Publisher analytics' rollups: per publisher × sub-ID × hour, kept as events are written.

Analytics never reads raw events: a month of pings is millions of rows, while its rollups
are one row per publisher, sub-ID and hour. Both stores keep the same numbers with the
same rules, decided here once: :func:`count_row` says what one ledger row adds to which
rollup, and :class:`Rollup` holds the sums (field names as the ``ledger_rollups`` table's
columns, migrations/0002_rollups.sql).

What counts (leg 0 only: an auction's legs are the gateway's own traffic, its leg-0 event
is the publisher's ping):

- on ``/rtbs.json``: every answer is a ping; ``invalid``, ``reserved``, ``no_bid``,
  ``repeat`` by outcome; ``errors`` are ``upstream_*`` and ``shed``; a reservation adds its
  payout to ``payout_offered`` and its ``upstream_ms`` to the histogram.
- a confirmation (``/rtbs/{uuid}.json`` answered ``confirmed``) counts for the hour,
  publisher and sub-ID of the reservation it confirms, found by ``reservation_uuid``;
  of the confirmation's own publisher and hour when that reservation is unknown.
- reconciliation adds its columns through ``add_reconciled`` (:class:`Reconciled`).

Time to bid is a histogram of fixed buckets (:data:`BUCKETS_MS`), so hours merge by
adding counts; a percentile is the upper bound of the bucket it falls in (at most one
bucket high), the last bucket's lower bound when it falls past every bound.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Iterable

import msgspec

from gateway.ledger.events import Row
from gateway.ledger.outcomes import CONFIRM, RESERVE

HOUR_S = 3600
# Upper bounds (ms, inclusive) of time-to-bid buckets; one more bucket holds the rest.
BUCKETS_MS: tuple[float, ...] = (
    5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000,
)  # fmt: skip
HIST_LEN = len(BUCKETS_MS) + 1
ERRORS = frozenset({"upstream_timeout", "upstream_error", "upstream_refused", "shed"})
# Outcomes with a column of their own (on /rtbs.json).
_COUNTED = {"invalid": "invalid", "reserved": "reserved", "no_bid": "no_bid", "repeat": "repeat"}

# A rollup's key: (hour start in epoch seconds, publisher_id or '', sub_id or '').
Key = tuple[int, str, str]


class Rollup(msgspec.Struct):
    """One publisher × sub-ID × hour's sums (the ``ledger_rollups`` columns)."""

    pings: int = 0
    invalid: int = 0
    reserved: int = 0
    no_bid: int = 0
    repeat: int = 0
    errors: int = 0
    confirmed: int = 0
    payout_offered: float = 0.0
    upstream_ms_hist: list[int] = msgspec.field(default_factory=lambda: [0] * HIST_LEN)
    calls: int = 0
    called_in_time: int = 0
    confirmed_not_called: int = 0
    converted: int = 0
    payout_earned: float = 0.0

    def merge(self, other: Rollup) -> None:
        """Add ``other``'s sums into this one."""
        for name in _SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        add_hist(self.upstream_ms_hist, other.upstream_ms_hist)


_SUMS = tuple(f.name for f in msgspec.structs.fields(Rollup) if f.name != "upstream_ms_hist")
COUNT_FIELDS = tuple(
    name for name in _SUMS if name not in ("payout_offered", "payout_earned")
)  # the bigint columns


class Reconciled(msgspec.Struct, frozen=True):
    """What one reconciliation pass adds to one rollup row (reconcile calls ``add_reconciled``)."""

    hour: float  # epoch seconds of the hour's start
    publisher_id: str | None
    sub_id: str | None
    calls: int
    called_in_time: int
    confirmed_not_called: int
    converted: int
    payout_earned: float


def _nothing() -> None:
    return None


def hour_of(at: float) -> int:
    return int(at // HOUR_S) * HOUR_S


def bucket_of(ms: float) -> int:
    """Index of the histogram bucket holding ``ms``."""
    return bisect.bisect_left(BUCKETS_MS, ms)


def add_hist(into: list[int], other: Iterable[int]) -> None:
    for i, n in enumerate(other):
        if i < len(into):
            into[i] += n


def percentile(hist: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a bucket histogram, as a bucket bound; None if empty."""
    total = sum(hist)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= rank and n:
            return float(BUCKETS_MS[i] if i < len(BUCKETS_MS) else BUCKETS_MS[-1])
    return float(BUCKETS_MS[-1])


def is_confirmation(row: Row) -> bool:
    return row.leg == 0 and row.route == CONFIRM and row.outcome == "confirmed"


def count_row(rollup: Rollup, row: Row) -> None:
    """Add one ledger row to ``rollup`` (a confirmation is counted by the caller, which
    knows whose reservation it confirms)."""
    if row.leg != 0:
        return
    if row.route == RESERVE:
        rollup.pings += 1
        column = _COUNTED.get(row.outcome)
        if column is not None:
            setattr(rollup, column, getattr(rollup, column) + 1)
        elif row.outcome in ERRORS:
            rollup.errors += 1
        if row.outcome == "reserved":
            if row.payout is not None:
                rollup.payout_offered += row.payout
            if row.upstream_ms is not None:
                rollup.upstream_ms_hist[bucket_of(row.upstream_ms)] += 1
    elif is_confirmation(row):
        rollup.confirmed += 1


def counts(row: Row) -> bool:
    """Whether ``row`` adds anything to a rollup."""
    return row.leg == 0 and (row.route == RESERVE or is_confirmation(row))


def key_of(at: float, row: Row) -> Key:
    return (hour_of(at), row.publisher_id or "", row.sub_id or "")


def add_reconciled_to(rollup: Rollup, item: Reconciled) -> None:
    rollup.calls += item.calls
    rollup.called_in_time += item.called_in_time
    rollup.confirmed_not_called += item.confirmed_not_called
    rollup.converted += item.converted
    rollup.payout_earned += item.payout_earned


class MemoryRollups:
    """The in-process rollups: a map bounded to ``max_rows`` keys, and a bounded map of
    reservation uuid → the key it counted under, so a confirmation finds its reservation.

    When full, the oldest entries make room (insertion order is roughly time order):
    counted in ``evicted`` and ``uuids_evicted``, and in
    ``gateway_ledger_rollups_evicted_total`` through ``on_evict``.
    """

    def __init__(
        self, max_rows: int, max_uuids: int, on_evict: Callable[[], None] | None = None
    ) -> None:
        self.max_rows = max_rows
        self._on_evict = on_evict or _nothing
        self.max_uuids = max_uuids
        # OrderedDict, not dict: taking a dict's oldest key with ``next(iter(d))`` walks
        # past every slot deleted since its last resize (43 µs a time at 100,000 keys).
        self.rows: OrderedDict[Key, Rollup] = OrderedDict()
        self.uuids: OrderedDict[str, Key] = OrderedDict()
        self.evicted = 0
        self.uuids_evicted = 0

    def _rollup(self, key: Key) -> Rollup:
        rollup = self.rows.get(key)
        if rollup is None:
            if len(self.rows) >= self.max_rows:
                self.rows.popitem(last=False)
                self.evicted += 1
                self._on_evict()
            rollup = self.rows[key] = Rollup()
        return rollup

    def add(self, rows: Iterable[tuple[float, Row]]) -> None:
        for at, row in rows:
            if not counts(row):
                continue
            key = key_of(at, row)
            if row.route == RESERVE:
                if row.outcome == "reserved" and row.reservation_uuid:
                    self._remember(row.reservation_uuid, key)
            elif row.reservation_uuid:
                key = self.uuids.get(row.reservation_uuid, key)
            count_row(self._rollup(key), row)

    def _remember(self, uuid: str, key: Key) -> None:
        if uuid not in self.uuids and len(self.uuids) >= self.max_uuids:
            self.uuids.popitem(last=False)
            self.uuids_evicted += 1
            self._on_evict()
        self.uuids[uuid] = key

    def add_reconciled(self, items: list[Reconciled]) -> None:
        for item in items:
            key = (hour_of(item.hour), item.publisher_id or "", item.sub_id or "")
            add_reconciled_to(self._rollup(key), item)

    def between(self, since: float, until: float) -> list[tuple[Key, Rollup]]:
        """Copies of the rollups of the hours in [hour_of(since), until)."""
        low = hour_of(since)
        return [
            (key, msgspec.structs.replace(r, upstream_ms_hist=list(r.upstream_ms_hist)))
            for key, r in list(self.rows.items())
            if low <= key[0] < until
        ]


# A row of analytics before derivation: (period start or None for total, publisher_id or
# '', sub_id or '' (always '' with by=publisher), the summed rollup).
Grouped = tuple[int | None, str, str, Rollup]
DAY_S = 86400


def period_of(hour: int, granularity: str) -> int | None:
    if granularity == "hour":
        return hour
    if granularity == "day":
        return hour // DAY_S * DAY_S
    return None


def group(keyed: Iterable[tuple[Key, Rollup]], by: str, granularity: str) -> list[Grouped]:
    """Sum hourly rollups into analytics rows, ordered by period, publisher, sub-ID."""
    merged: dict[tuple[int | None, str, str], Rollup] = {}
    for (hour, publisher, sub), rollup in keyed:
        key = (period_of(hour, granularity), publisher, sub if by == "sub_id" else "")
        into = merged.get(key)
        if into is None:
            merged[key] = rollup
        else:
            into.merge(rollup)
    ordered = sorted(merged, key=lambda k: (k[0] or 0, k[1], k[2]))
    return [(*key, merged[key]) for key in ordered]
