"""The PostgreSQL side of rollups (``ledger_rollups``, migrations/0002_rollups.sql).

Kept by :func:`add_inserted` inside the writer's transaction, from the rows the batch's
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` actually inserted: a retried batch inserts
nothing the second time and so adds nothing, and a crash between the insert and the
rollup update is impossible (one transaction). Rows are upserted in key order, so two
replicas writing the same hour never deadlock.

Read by :func:`query`: the hourly rows summed in SQL by period and publisher (and
sub-ID), histogram buckets included (one ``sum(upstream_ms_hist[i])`` per bucket).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.ledger.events import Row
from gateway.ledger.rollups import (
    COUNT_FIELDS,
    HIST_LEN,
    Grouped,
    Key,
    Reconciled,
    Rollup,
    count_row,
    counts,
    hour_of,
    is_confirmation,
)

ROLLUPS = "ledger_rollups"
WORK_MEM = "128MB"
# What the insert returns of each inserted row: all that counting needs.
RETURNING = "at, leg, route, outcome, publisher_id, sub_id, reservation_uuid, payout, upstream_ms"
_SUM_COLUMNS = (*COUNT_FIELDS, "payout_offered", "payout_earned")
_PLACES = ", ".join(f"${i + 4}" for i in range(len(_SUM_COLUMNS) + 1))
_ADD = ", ".join(f"{c} = {ROLLUPS}.{c} + EXCLUDED.{c}" for c in _SUM_COLUMNS)
_ADD_HIST = (
    "upstream_ms_hist = (SELECT array_agg(coalesce(a, 0) + coalesce(b, 0) ORDER BY i) "
    "FROM unnest(ledger_rollups.upstream_ms_hist, EXCLUDED.upstream_ms_hist) "
    "WITH ORDINALITY AS u(a, b, i))"
)
_UPSERT = " ".join(
    (
        f"INSERT INTO {ROLLUPS} (hour, publisher_id, sub_id,",
        f"{', '.join(_SUM_COLUMNS)}, upstream_ms_hist) VALUES ($1, $2, $3, {_PLACES})",
        f"ON CONFLICT (hour, publisher_id, sub_id) DO UPDATE SET {_ADD}, {_ADD_HIST}",
    )
)
_RESERVATIONS = (
    "SELECT DISTINCT ON (reservation_uuid) reservation_uuid, at, publisher_id, sub_id "
    "FROM ledger_events WHERE reservation_uuid = ANY($1::text[]) AND route = '/rtbs.json' "
    "AND outcome = 'reserved' AND leg = 0 ORDER BY reservation_uuid, at"
)


def _stamp(record: Any) -> tuple[float, Row]:
    """The few fields counting reads, as a Row (the rest are None)."""
    values = dict.fromkeys(
        (
            "request_id", "status", "key_id", "caller", "seconds", "inbound_number",
            "expires_at", "duration_ms", "destination", "auction",
        )
    )  # fmt: skip
    values.update(record)
    at = record["at"].timestamp()
    values["at"] = ""
    values["request_id"] = ""
    values["status"] = 0
    return at, Row(**values)


async def add_inserted(conn: Any, inserted: list[Any], timeout_s: float) -> None:
    """Add the rows just inserted (records of :data:`RETURNING`) to the rollups."""
    stamped = [_stamp(record) for record in inserted]
    uuids = sorted(
        {row.reservation_uuid or "" for _, row in stamped if is_confirmation(row)} - {""}
    )
    owners: dict[str, Key] = {}
    if uuids:
        for r in await conn.fetch(_RESERVATIONS, uuids, timeout=timeout_s):
            owners[r["reservation_uuid"]] = (
                hour_of(r["at"].timestamp()),
                r["publisher_id"] or "",
                r["sub_id"] or "",
            )
    sums: dict[Key, Rollup] = {}
    for at, row in stamped:
        if not counts(row):  # data writing, an auction's legs: no row of zeros
            continue
        key: Key = (hour_of(at), row.publisher_id or "", row.sub_id or "")
        if is_confirmation(row) and row.reservation_uuid:
            key = owners.get(row.reservation_uuid, key)
        rollup = sums.get(key)
        if rollup is None:
            rollup = sums[key] = Rollup()
        count_row(rollup, row)
    await upsert(conn, sums, timeout_s)


async def upsert(conn: Any, sums: dict[Key, Rollup], timeout_s: float) -> None:
    records = [
        (
            datetime.fromtimestamp(key[0], UTC),
            key[1],
            key[2],
            *(getattr(rollup, c) for c in _SUM_COLUMNS),
            rollup.upstream_ms_hist,
        )
        for key, rollup in sorted(sums.items())
    ]
    if records:
        await conn.executemany(_UPSERT, records, timeout=timeout_s)


async def add_reconciled(conn: Any, items: list[Reconciled], timeout_s: float) -> None:
    """Reconciliation's sums added to their rollup rows (created when absent).

    Runs in a transaction of its own, or as a savepoint of the caller's: a pass that
    settles its events and calls this on the same connection inside one transaction
    commits both or neither, so a crash in between neither loses nor doubles a sum.
    """
    sums: dict[Key, Rollup] = {}
    for item in items:
        key = (hour_of(item.hour), item.publisher_id or "", item.sub_id or "")
        rollup = sums.get(key)
        if rollup is None:
            rollup = sums[key] = Rollup(upstream_ms_hist=[0] * HIST_LEN)
        rollup.calls += item.calls
        rollup.called_in_time += item.called_in_time
        rollup.confirmed_not_called += item.confirmed_not_called
        rollup.converted += item.converted
        rollup.payout_earned += item.payout_earned
    async with conn.transaction():
        await upsert(conn, sums, timeout_s)


_PERIOD = {
    "total": "NULL::timestamptz",
    "day": "date_bin('1 day', hour, TIMESTAMPTZ '2000-01-01 00:00:00+00')",  # UTC days, PG 14
    "hour": "hour",
}


async def query(
    conn: Any,
    since: float,
    until: float,
    by: str,
    granularity: str,
    limit: int,
    timeout_s: float,
) -> list[Grouped]:
    """Analytics rows for hours in [hour_of(since), until), at most ``limit``."""
    period = _PERIOD[granularity]
    sub = "sub_id" if by == "sub_id" else "''"
    low = datetime.fromtimestamp(hour_of(since), UTC)
    high = datetime.fromtimestamp(until, UTC)
    # Bucket by bucket in the same pass (a subscript per row is cheap; unnesting is not).
    # bigint sums come back as numeric (Decimal, slow to decode): cast them back.
    sums = ", ".join(
        [f"sum({c})::bigint" if c in COUNT_FIELDS else f"sum({c})" for c in _SUM_COLUMNS]
        + [f"sum(upstream_ms_hist[{i}])::bigint" for i in range(1, HIST_LEN + 1)]
    )
    async with conn.transaction():
        # A month of rows grouped per day sorts ~100 MB: in memory, not spilled to disk
        # (the reader pool holds at most 2 connections, so at most 2 × WORK_MEM); JIT
        # compiling costs more than it saves on a query this size.
        await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'; SET LOCAL jit = off")
        records = await conn.fetch(
            f"SELECT {period} AS period, publisher_id, {sub} AS sub, {sums} "  # noqa: S608
            f"FROM {ROLLUPS} WHERE hour >= $1 AND hour < $2 "
            "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LIMIT $3",
            low,
            high,
            limit,
            timeout=timeout_s,
        )
    grouped: list[Grouped] = []
    first_hist = 3 + len(_SUM_COLUMNS)
    for r in records:
        values = {c: r[i + 3] for i, c in enumerate(_SUM_COLUMNS)}
        for c in COUNT_FIELDS:
            values[c] = int(values[c])
        hist = [int(r[first_hist + i] or 0) for i in range(HIST_LEN)]
        period_s = None if r[0] is None else int(r[0].timestamp())
        grouped.append((period_s, r[1], r[2], Rollup(**values, upstream_ms_hist=hist)))
    return grouped
