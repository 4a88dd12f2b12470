"""The PostgreSQL ledger store (14 or newer), through asyncpg; shared by every replica.

Writes: each batch is COPYed into a session-local staging table and moved with
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` in one transaction, so COPY's speed
meets the key's idempotency: a batch retried after a crash or a timeout (committed or
not, the writer cannot know) inserts each ``(day, request_id, leg)`` once.

Start-up never waits for PostgreSQL: the first write (or export) connects and migrates
(migrations.py). Until PostgreSQL answers, the writer's batch is retried and events wait
in the queue; pings do not notice. Any failure drops the connection (it may be stuck
mid-protocol) and the next try opens a fresh one.

Partitions: one per UTC day, created for today and two days ahead, and for any day a
batch carries; partitions older than ``retention_days`` are dropped (checked hourly by
the writer's own calls, never on a ping). Every call carries ``timeout_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from gateway.config import mask_url
from gateway.ledger import postgres_rollups as rollups
from gateway.ledger.events import ROW_FIELDS, Row
from gateway.ledger.migrations import LOCK_ID, migrate
from gateway.ledger.rollups import Grouped, Reconciled
from gateway.ledger.store import Stamped, StoreUnavailable

log = logging.getLogger("gateway.ledger")

TABLE = "ledger_events"
STAGING = "ledger_staging"
DAYS_AHEAD = 2
MAINTENANCE_EVERY_S = 3600.0
EXPORT_PREFETCH = 1000
# Columns COPY writes, in order: the partition day, then the row's fields.
COLUMNS = ("day", *ROW_FIELDS)
_SELECT = ", ".join(ROW_FIELDS)


def partition_name(day: date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


class PostgresLedgerStore:
    def __init__(self, url: str, *, retention_days: int, timeout_s: float) -> None:
        self._url = url
        self.description = mask_url(url)
        self.retention_days = retention_days
        self.timeout_s = timeout_s
        self._conn: Any = None
        self._pool: Any = None
        self._migrated = False
        self._days: set[date] = set()
        self._maintained_at = 0.0

    def __repr__(self) -> str:
        return f"PostgresLedgerStore({self.description!r})"

    async def start(self) -> None:
        return None  # connects on first use: PostgreSQL being down must not stop a start

    # -- writing ---------------------------------------------------------------------------

    async def write(self, rows: list[Stamped]) -> None:
        if not rows:
            return
        conn = await self._connection()
        try:
            records = [
                (_day(at), datetime.fromtimestamp(at, UTC), *_values(row)) for at, row in rows
            ]
            for day in {record[0] for record in records} - self._days:
                await self._partition(conn, day)
            t = self.timeout_s
            async with conn.transaction():
                await conn.copy_records_to_table(
                    STAGING, records=records, columns=COLUMNS, timeout=t
                )
                inserted = await conn.fetch(
                    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "  # noqa: S608 - constants
                    f"SELECT {', '.join(COLUMNS)} FROM {STAGING} ON CONFLICT DO NOTHING "
                    f"RETURNING {rollups.RETURNING}",
                    timeout=t,
                )
                # Only what was inserted now counts: a retried batch adds nothing twice.
                await rollups.add_inserted(conn, inserted, t)
            if time.monotonic() - self._maintained_at > MAINTENANCE_EVERY_S:
                await self._maintain(conn)
        except BaseException:
            await self._drop_connection()
            raise

    async def _connection(self) -> Any:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        conn = await asyncpg.connect(
            self._url, timeout=self.timeout_s, command_timeout=self.timeout_s
        )
        try:
            if not self._migrated:
                applied = await migrate(conn, self.timeout_s)
                if applied:
                    log.info("ledger schema migrated", extra={"applied": applied})
                self._migrated = True
            await conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} "
                f"(LIKE {TABLE} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
                timeout=self.timeout_s,
            )
            await self._maintain(conn)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        return conn

    async def _partition(self, conn: Any, day: date) -> None:
        # Replicas create the same day's partition at midnight: the migration lock makes
        # "IF NOT EXISTS" hold (without it, two CREATEs race and one fails).
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID, timeout=self.timeout_s)
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF {TABLE} "
                f"FOR VALUES FROM ('{day.isoformat()}') TO ('{day + timedelta(days=1)}')",
                timeout=self.timeout_s,
            )
        self._days.add(day)

    async def _maintain(self, conn: Any) -> None:
        """Partitions for today and the days ahead; drop those past the retention."""
        today = datetime.now(UTC).date()
        for ahead in range(DAYS_AHEAD + 1):
            day = today + timedelta(days=ahead)
            if day not in self._days:
                await self._partition(conn, day)
        cutoff = today - timedelta(days=self.retention_days)
        names = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = $1::regclass",
            TABLE,
            timeout=self.timeout_s,
        )
        for record in names:
            day = _partition_day(record["relname"])
            if day is not None and day < cutoff:
                async with conn.transaction():
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock($1)", LOCK_ID, timeout=self.timeout_s
                    )
                    await conn.execute(
                        f"DROP TABLE IF EXISTS {record['relname']}", timeout=self.timeout_s
                    )
                self._days.discard(day)
                log.info("ledger partition dropped", extra={"partition": record["relname"]})
        self._maintained_at = time.monotonic()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()  # never wait on a connection that just failed

    # -- reading ---------------------------------------------------------------------------

    async def export(
        self, since: float | None, until: float | None, limit: int
    ) -> AsyncIterator[Row]:
        try:
            pool = await self._reader()
            conn = await pool.acquire(timeout=self.timeout_s)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise StoreUnavailable(type(exc).__name__) from None
        try:
            low = datetime.fromtimestamp(since, UTC) if since is not None else None
            high = datetime.fromtimestamp(until, UTC) if until is not None else None
            query = (
                f"SELECT {_SELECT} FROM {TABLE} "  # noqa: S608 - constants
                "WHERE ($1::timestamptz IS NULL OR at >= $1) "
                "AND ($2::timestamptz IS NULL OR at < $2) "
                "ORDER BY at, request_id, leg LIMIT $3"
            )
            async with conn.transaction():
                try:
                    cursor = conn.cursor(query, low, high, limit, prefetch=EXPORT_PREFETCH)
                    async for record in cursor:
                        yield _row(record)
                except asyncpg.UndefinedTableError:
                    return  # nothing written yet: an empty export
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            # Before the first row this is a clean 503; later, the stream is cut short.
            raise StoreUnavailable(type(exc).__name__) from None
        finally:
            await pool.release(conn)

    async def add_reconciled(self, items: list[Reconciled]) -> None:
        """Reconciliation's sums into their rollup rows (rollups.py, postgres_rollups.py)."""
        if not items:
            return
        pool = await self._reader()
        async with pool.acquire(timeout=self.timeout_s) as conn:
            await rollups.add_reconciled(conn, items, self.timeout_s)

    async def analytics(
        self, since: float, until: float, by: str, granularity: str, limit: int
    ) -> list[Grouped]:
        """Rollups summed per period and publisher (and sub-ID): postgres_rollups.query."""
        try:
            pool = await self._reader()
            async with pool.acquire(timeout=self.timeout_s) as conn:
                return await rollups.query(
                    conn, since, until, by, granularity, limit, self.timeout_s
                )
        except asyncpg.UndefinedTableError:
            return []  # nothing written yet
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise StoreUnavailable(type(exc).__name__) from None

    async def _reader(self) -> Any:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=0,
                max_size=2,
                timeout=self.timeout_s,
                command_timeout=self.timeout_s,
            )
        return self._pool

    # -- reconciliation (postgres_reconcile.py does the work) ----------------------------

    async def open_reservations(self, until: float, limit: int) -> list[Row]:
        from gateway.ledger import postgres_reconcile

        pool = await self._reader()
        async with pool.acquire(timeout=self.timeout_s) as conn:
            return await postgres_reconcile.open_reservations(conn, until, limit, self.timeout_s)

    async def settle(self, outcomes: list[Any]) -> int:
        from gateway.ledger import postgres_reconcile
        from gateway.ledger.settling import add_reconciled

        pool = await self._reader()
        async with pool.acquire(timeout=self.timeout_s) as conn:
            settled = await postgres_reconcile.settle(conn, outcomes, self.timeout_s)
        await add_reconciled(self, settled.items)
        return settled.changed

    async def close(self) -> None:
        await self._drop_connection()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()


def _day(at: float) -> date:
    return datetime.fromtimestamp(at, UTC).date()


def _values(row: Row) -> tuple[Any, ...]:
    # ROW_FIELDS order, skipping "at" (the timestamp goes in as a datetime).
    return tuple(getattr(row, name) for name in ROW_FIELDS[1:])


def _row(record: Any) -> Row:
    values = dict(record)
    at = values["at"].astimezone(UTC)
    values["at"] = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
    return Row(**values)


def _partition_day(name: str) -> date | None:
    prefix = f"{TABLE}_p"
    if not name.startswith(prefix):
        return None
    try:
        return datetime.strptime(name[len(prefix) :], "%Y%m%d").date()
    except ValueError:
        return None
