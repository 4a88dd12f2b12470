"""Reconciliation's reads and writes on the PostgreSQL ledger, on a connection the pass holds.

The pass holds one connection for its whole run: the session-level advisory lock that
makes it the only reconciling replica lives on it (a replica that dies mid-pass loses
the connection and with it the lock, so another takes over on its next interval).

Settling is one ``UPDATE ... FROM unnest(...)`` per pass, guarded by
``call_outcome IS NULL``: re-running a pass (after a crash between the update and the
watermark, or on another replica) changes nothing twice. ``RETURNING`` gives exactly
the rows changed, which are what the rollups get. Reservations are found by the partial
indexes of migration 0003, which hold only reservations still waiting for an outcome.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.ledger.events import ROW_FIELDS, Row
from gateway.ledger.matching import NOT_CALLED, Outcome
from gateway.ledger.outcomes import CONFIRM, CONFIRMED, RESERVE, RESERVED
from gateway.ledger.settling import Changed, Settled, summarize

# pg_try_advisory_lock key of the pass: "rtbgw-reconcile" folded into a bigint, fixed forever.
RECONCILE_LOCK_ID = 0x7274_6267_7263_6E63
STATE_NAME = "calls"
# postgres.py's table and columns (not imported: postgres.py delegates to this module).
TABLE = "ledger_events"
_SELECT = ", ".join(ROW_FIELDS)
# Written as literals, not parameters: the planner matches them to 0003's partial indexes.
_OPEN = f"outcome = '{RESERVED}' AND route = '{RESERVE}' AND call_outcome IS NULL"
_OPEN_E = f"e.outcome = '{RESERVED}' AND e.route = '{RESERVE}' AND e.call_outcome IS NULL"


async def try_lock(conn: Any, timeout_s: float) -> bool:
    return bool(
        await conn.fetchval("SELECT pg_try_advisory_lock($1)", RECONCILE_LOCK_ID, timeout=timeout_s)
    )


async def unlock(conn: Any, timeout_s: float) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", RECONCILE_LOCK_ID, timeout=timeout_s)


async def load_watermark(conn: Any, timeout_s: float) -> float | None:
    value = await conn.fetchval(
        "SELECT watermark FROM ledger_reconcile_state WHERE name = $1",
        STATE_NAME,
        timeout=timeout_s,
    )
    return None if value is None else value.timestamp()


async def save_watermark(conn: Any, watermark: float, timeout_s: float) -> None:
    await conn.execute(
        "INSERT INTO ledger_reconcile_state (name, watermark) VALUES ($1, $2) "
        "ON CONFLICT (name) DO UPDATE SET watermark = EXCLUDED.watermark, updated_at = now()",
        STATE_NAME,
        datetime.fromtimestamp(watermark, UTC),
        timeout=timeout_s,
    )


async def open_reservations(conn: Any, until: float, limit: int, timeout_s: float) -> list[Row]:
    """Reservation events still without a call outcome, ``at <= until``, oldest first."""
    records = await conn.fetch(
        f"SELECT {_SELECT} FROM {TABLE} "  # noqa: S608 - constants
        f"WHERE {_OPEN} AND leg = 0 AND at <= $1 ORDER BY at, request_id LIMIT $2",
        datetime.fromtimestamp(until, UTC),
        limit,
        timeout=timeout_s,
    )
    return [_row(record) for record in records]


async def taken_calls(conn: Any, uuids: list[str], timeout_s: float) -> frozenset[str]:
    """Which of ``uuids`` an earlier pass already matched to a reservation."""
    if not uuids:
        return frozenset()
    records = await conn.fetch(
        f"SELECT DISTINCT call_uuid FROM {TABLE} WHERE call_uuid = ANY($1::text[])",  # noqa: S608
        uuids,
        timeout=timeout_s,
    )
    return frozenset(record["call_uuid"] for record in records)


async def settle(conn: Any, outcomes: list[Outcome], timeout_s: float) -> Settled:
    """Write each outcome on its still-open reservation; sum what changed."""
    if not outcomes:
        return summarize(())
    async with conn.transaction():
        records = await conn.fetch(
            f"UPDATE {TABLE} AS e SET call_outcome = o.call_outcome, call_uuid = o.call_uuid, "  # noqa: S608
            "converted = o.converted, payout_earned = o.payout_earned, reconciled_at = now() "
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::float8[]) "
            "AS o(request_id, call_outcome, call_uuid, converted, payout_earned) "
            f"WHERE e.request_id = o.request_id AND e.leg = 0 AND {_OPEN_E} "
            "RETURNING e.at, e.publisher_id, e.sub_id, e.reservation_uuid, e.call_outcome, "
            "e.converted, e.payout_earned",
            [o.request_id for o in outcomes],
            [o.call_outcome for o in outcomes],
            [o.call_uuid for o in outcomes],
            [o.converted for o in outcomes],
            [o.payout_earned for o in outcomes],
            timeout=timeout_s,
        )
        missed = [
            r["reservation_uuid"]
            for r in records
            if r["call_outcome"] == NOT_CALLED and r["reservation_uuid"]
        ]
        confirmed: set[str] = set()
        if missed:
            found = await conn.fetch(
                f"SELECT DISTINCT reservation_uuid FROM {TABLE} "  # noqa: S608 - constants
                "WHERE reservation_uuid = ANY($1::text[]) AND route = $2 AND outcome = $3",
                missed,
                CONFIRM,
                CONFIRMED,
                timeout=timeout_s,
            )
            confirmed = {r["reservation_uuid"] for r in found}
    return summarize(
        Changed(
            r["at"].timestamp(),
            r["publisher_id"],
            r["sub_id"],
            r["call_outcome"],
            r["converted"],
            r["payout_earned"],
            r["reservation_uuid"] in confirmed,
        )
        for r in records
    )


def _row(record: Any) -> Row:
    values = dict(record)
    at = values["at"].astimezone(UTC)
    values["at"] = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    return Row(**values)
