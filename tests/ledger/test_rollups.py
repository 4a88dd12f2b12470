"""Rollups in each store, written directly: a retried batch counts once, a confirmation
counts for the reservation it confirms (also from an earlier batch), reconciliation's
sums land on their row, bounds hold, and percentiles come from the merged histogram."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.ledger.events import Event, Materializer
from gateway.ledger.memory import MemoryLedgerStore
from gateway.ledger.outcomes import Reservation
from gateway.ledger.postgres import PostgresLedgerStore
from gateway.ledger.rollups import BUCKETS_MS, HIST_LEN, MemoryRollups, Reconciled, percentile

HOUR = 1_796_000_400  # 2026-11-29T23:00:00Z, an hour's start
M = Materializer(b"s" * 32)


def _row(at: float, n: int, outcome: str, route: str = "/rtbs.json", **kw: Any) -> Any:
    event = Event(at, f"req-{n}", route, 200, outcome, caller="+18558485518", **kw)
    return at, M.row(event)


def _reserved(at: float, n: int, pub: str, sub: str | None, upstream_s: float) -> Any:
    reservation = Reservation(status="reserved", uuid=f"uuid-{n}", retreaver_payout=2.5)
    return _row(
        at,
        n,
        "reserved",
        publisher_id=pub,
        sub_id=sub,
        reservation=reservation,
        upstream_s=upstream_s,
    )


def _confirm(at: float, n: int, uuid: str) -> Any:
    return _row(at, n, "confirmed", route="/rtbs/{uuid}.json", reservation_uuid=uuid)


def _batches() -> tuple[list[Any], list[Any]]:
    first = [
        _reserved(HOUR + 10, 1, "p", "s", 0.004),
        _reserved(HOUR + 20, 2, "p", "s", 0.040),
        _reserved(HOUR + 30, 3, "p", None, 0.400),
        _row(HOUR + 40, 4, "no_bid", publisher_id="p", sub_id="s"),
        _row(HOUR + 50, 5, "shed", publisher_id="p", sub_id="s"),
        # An auction's leg: the gateway's own traffic, never a ping.
        _row(HOUR + 50, 5, "lost", publisher_id="p", sub_id="s", leg=1),
        # Call data writing is no ping: no row for its publisher.
        _row(HOUR + 55, 8, "written", route="/data_writing", publisher_id="dw"),
    ]
    # The next hour: one confirmation of an earlier bid, one of a bid nobody knows.
    second = [_confirm(HOUR + 3700, 6, "uuid-1"), _confirm(HOUR + 3710, 7, "uuid-x")]
    return first, second


def _by_key(grouped: list[Any]) -> dict[tuple[Any, str, str], Any]:
    return {(p, pub, sub): r for p, pub, sub, r in grouped}


async def _check(store: Any, *, retried: bool) -> None:
    first, second = _batches()
    await store.write(first)
    if retried:  # PostgreSQL: a batch retried (after a timeout) counts nothing twice
        await store.write(first)
    await store.write(second)
    await store.add_reconciled(
        [
            Reconciled(float(HOUR), "p", "s", 2, 1, 1, 1, 7.25),
            Reconciled(float(HOUR), "q", None, 1, 1, 0, 0, 0.0),
        ]
    )
    hourly = _by_key(await store.analytics(HOUR, HOUR + 7200, "sub_id", "hour", 100))
    assert set(hourly) == {
        (HOUR, "p", "s"),
        (HOUR, "p", ""),
        (HOUR, "q", ""),
        (HOUR + 3600, "", ""),
    }
    ps = hourly[(HOUR, "p", "s")]
    assert (ps.pings, ps.reserved, ps.no_bid, ps.errors, ps.confirmed) == (4, 2, 1, 1, 1)
    assert ps.payout_offered == 5.0
    assert (ps.calls, ps.called_in_time, ps.confirmed_not_called, ps.converted) == (2, 1, 1, 1)
    assert ps.payout_earned == 7.25
    assert ps.upstream_ms_hist[0] == 1  # 4 ms
    assert ps.upstream_ms_hist[BUCKETS_MS.index(50)] == 1  # 40 ms
    assert sum(ps.upstream_ms_hist) == 2
    # The unknown reservation's confirmation counts for its own (missing) publisher, hour.
    assert hourly[(HOUR + 3600, "", "")].confirmed == 1
    total = _by_key(await store.analytics(HOUR, HOUR + 7200, "publisher", "total", 100))
    assert set(total) == {(None, "", ""), (None, "p", ""), (None, "q", "")}
    p = total[(None, "p", "")]
    assert (p.pings, p.reserved, p.confirmed, p.calls) == (5, 3, 1, 2)
    assert sum(p.upstream_ms_hist) == 3
    assert percentile(p.upstream_ms_hist, 0.99) == 500
    # A window after those hours sees nothing; a limit cuts rows, ordered.
    assert await store.analytics(HOUR + 7200, HOUR + 9000, "publisher", "total", 100) == []
    cut = await store.analytics(HOUR, HOUR + 7200, "publisher", "total", 2)
    assert [(g[1]) for g in cut] == ["", "p"]


async def test_memory_store_rollups() -> None:
    await _check(MemoryLedgerStore(1000), retried=False)  # never fails half-way


async def test_postgres_store_rollups(postgres_url: str) -> None:
    store = PostgresLedgerStore(postgres_url, retention_days=3650, timeout_s=5.0)
    try:
        await _check(store, retried=True)
    finally:
        await store.close()


def test_memory_rollups_are_bounded_and_count_what_they_evict() -> None:
    evictions: list[int] = []
    rollups = MemoryRollups(max_rows=2, max_uuids=1, on_evict=lambda: evictions.append(1))
    rollups.add([_reserved(HOUR + h * 3600, h, "p", None, 0.01) for h in range(3)])
    assert len(rollups.rows) == 2
    assert rollups.evicted == 1
    assert min(k[0] for k in rollups.rows) == HOUR + 3600  # the oldest made room
    assert list(rollups.uuids) == ["uuid-2"]
    assert rollups.uuids_evicted == 2
    assert len(evictions) == 3  # gateway_ledger_rollups_evicted_total


@pytest.mark.parametrize(
    ("hist", "q", "expected"),
    [
        ([0] * HIST_LEN, 0.5, None),
        ([1] + [0] * (HIST_LEN - 1), 0.99, BUCKETS_MS[0]),
        ([0] * (HIST_LEN - 1) + [3], 0.5, BUCKETS_MS[-1]),
        ([50, 45, 4, 1] + [0] * (HIST_LEN - 4), 0.5, BUCKETS_MS[0]),
        ([50, 45, 4, 1] + [0] * (HIST_LEN - 4), 0.95, BUCKETS_MS[1]),
        ([50, 45, 4, 1] + [0] * (HIST_LEN - 4), 0.99, BUCKETS_MS[2]),
    ],
)
def test_percentiles_are_bucket_bounds(hist: list[int], q: float, expected: float | None) -> None:
    assert percentile(hist, q) == expected
