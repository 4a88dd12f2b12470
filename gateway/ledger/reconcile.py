"""Reconciliation: which reservations Retreaver's callers called, what they earned.

A pass, every ``GATEWAY_RECONCILE_INTERVAL_S`` and on ``POST /admin/reconcile``:

1. take the lock (one replica at a time): PostgreSQL's session advisory lock with the
   PostgreSQL ledger (lost with the connection if the replica dies), an in-process lock
   otherwise. A replica that finds it held skips the pass (``"ran": false``);
2. read the calls created in ``[watermark - overlap, now]`` (call_pages.py, through the
   Core API client and its politeness), callers digested at once;
3. load the reservations still without an outcome, and which of the calls read an
   earlier pass already matched (the overlap re-reads them on purpose; a matched call
   matches nothing again);
4. match (matching.py, the pure rules) and settle the outcomes on the events, only
   where none is set yet; what changed goes to the rollups (``add_reconciled``) and
   the metrics;
5. move the watermark to ``now`` (or to the last call read when the page cap stopped
   the read early).

Why the overlap: the Core API may show a call some time after its ``created_at`` (and
the ledger writes reservations in the background), so each pass re-reads the last
``GATEWAY_RECONCILE_OVERLAP_S`` before the watermark. For the same reason a reservation
is only declared ``not_called`` once ``expires_at + grace`` is older than the overlap:
until then a call that shows up late can still find it.

Failure is cheap by construction: nothing is settled and the watermark does not move
unless every page was read, and settling is idempotent, so a pass cut short (the Core
API down, a 429 storm past the retry budget, the process killed) is simply run again on
the next interval from the same watermark, with no call lost or matched twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import msgspec
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.coreapi.client import CoreApiClient
from gateway.errors import RequestError
from gateway.ledger import memory_reconcile
from gateway.ledger.admin import AdminAuth, guarded
from gateway.ledger.call_pages import CallsUnavailable, read_calls
from gateway.ledger.events import Row, parse_at
from gateway.ledger.matching import CALL_OUTCOMES, NOT_CALLED, Outcome, Reservation, match
from gateway.ledger.settling import Settled, add_reconciled
from gateway.observe.metrics import Metrics

log = logging.getLogger("gateway.ledger")

# The sandbox's seeded key that sees company 1, where its callers' calls are logged.
SANDBOX_API_KEY = "barkbarkbark"
SANDBOX_COMPANY_ID = "1"
SANDBOX_INTERVAL_MAX_S = 10.0
# Bounds of one pass: pages of 100 calls, and reservations loaded at once.
MAX_PAGES = 2000
MAX_RESERVATIONS = 500_000

_encoder = msgspec.json.Encoder()


class Summary(msgspec.Struct, kw_only=True):
    """What one pass did (the answer of ``POST /admin/reconcile``)."""

    ran: bool = True
    calls_read: int = 0
    pages: int = 0
    reservations: int = 0
    matched: int = 0
    called: int = 0
    late_call: int = 0
    not_called: int = 0
    confirmed_not_called: int = 0
    settled: int = 0
    errors: int = 0
    error: str | None = None
    watermark: str | None = None


class Session(Protocol):
    """One pass's access to the ledger, held under the lock."""

    async def load_watermark(self) -> float | None: ...
    async def save_watermark(self, watermark: float) -> None: ...
    async def open_reservations(self, until: float, limit: int) -> list[Row]: ...
    async def taken_calls(self, uuids: list[str]) -> frozenset[str]: ...
    async def settle(self, outcomes: list[Outcome]) -> Settled: ...


class Backend(Protocol):
    def session(self) -> contextlib.AbstractAsyncContextManager[Session | None]: ...


class MemoryBackend:
    """The in-process ledger: an asyncio lock, the watermark in memory (gone on restart,
    as the ring's events are)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.watermark: float | None = None
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session | None]:
        if self._lock.locked():
            yield None
            return
        async with self._lock:
            yield _MemorySession(self)


class _MemorySession:
    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend
        self.rows = backend.store.rows

    async def load_watermark(self) -> float | None:
        return self.backend.watermark

    async def save_watermark(self, watermark: float) -> None:
        self.backend.watermark = watermark

    async def open_reservations(self, until: float, limit: int) -> list[Row]:
        return memory_reconcile.open_reservations(self.rows, until, limit)

    async def taken_calls(self, uuids: list[str]) -> frozenset[str]:
        return memory_reconcile.taken_calls(self.rows, uuids)

    async def settle(self, outcomes: list[Outcome]) -> Settled:
        return memory_reconcile.settle(list(self.rows), outcomes)


class PostgresBackend:
    """The PostgreSQL ledger: a connection per pass holding the advisory lock; the
    watermark in ``ledger_reconcile_state`` (migration 0003)."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self._url = url
        self.timeout_s = timeout_s
        self._migrated = False

    def __repr__(self) -> str:  # the URL carries a password
        return "PostgresBackend()"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Session | None]:
        import asyncpg

        from gateway.ledger import postgres_reconcile as pg
        from gateway.ledger.migrations import migrate

        t = self.timeout_s
        conn = await asyncpg.connect(self._url, timeout=t, command_timeout=t)
        try:
            if not self._migrated:
                await migrate(conn, t)
                self._migrated = True
            if not await pg.try_lock(conn, t):
                yield None
                return
            try:
                yield _PostgresSession(conn, t)
            finally:
                with contextlib.suppress(Exception):
                    await pg.unlock(conn, t)
        finally:
            conn.terminate()  # closing ends the session, and with it any lock left


class _PostgresSession:
    def __init__(self, conn: Any, timeout_s: float) -> None:
        from gateway.ledger import postgres_reconcile

        self.pg = postgres_reconcile
        self.conn = conn
        self.t = timeout_s

    async def load_watermark(self) -> float | None:
        return await self.pg.load_watermark(self.conn, self.t)

    async def save_watermark(self, watermark: float) -> None:
        await self.pg.save_watermark(self.conn, watermark, self.t)

    async def open_reservations(self, until: float, limit: int) -> list[Row]:
        return await self.pg.open_reservations(self.conn, until, limit, self.t)

    async def taken_calls(self, uuids: list[str]) -> frozenset[str]:
        return await self.pg.taken_calls(self.conn, uuids, self.t)

    async def settle(self, outcomes: list[Outcome]) -> Settled:
        return await self.pg.settle(self.conn, outcomes, self.t)


class ReconcileMetrics:
    """Counters of the passes; ``gateway_confirmed_not_called_total`` is always there."""

    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.passes = Counter(
            "gateway_reconcile_passes_total",
            "Reconciliation passes by result (ok, error, locked: another replica held it)",
            ("result",),
            registry=r,
        )
        self.calls_read = Counter(
            "gateway_reconcile_calls_read_total",
            "Calls read from the Core API by reconciliation (overlap re-reads included)",
            registry=r,
        )
        self.outcomes = Counter(
            "gateway_reconcile_outcomes_total",
            "Reservations settled by reconciliation, by call outcome",
            ("call_outcome",),
            registry=r,
        )
        self.confirmed_not_called = Counter(
            "gateway_confirmed_not_called_total",
            "Confirmed reservations that ended not_called (Retreaver may penalise them)",
            registry=r,
        )
        self.confirm_guard = Counter(
            "gateway_confirm_guard_total",
            "The confirm guard's verdicts: refused (mode on), would_refuse (shadow), "
            "forgotten (a bounded map let an entry go)",
            ("verdict",),
            registry=r,
        )
        for verdict in ("refused", "would_refuse", "forgotten"):
            self.confirm_guard.labels(verdict)
        for result in ("ok", "error", "locked"):
            self.passes.labels(result)
        for outcome in CALL_OUTCOMES:
            self.outcomes.labels(outcome)


class Reconciler:
    """The pass, its background task and its admin route."""

    def __init__(
        self,
        backend: Backend,
        client: CoreApiClient,
        *,
        store: Any,
        digest: Callable[[str], str],
        api_key: str,
        company_id: str | None,
        interval_s: float,
        grace_s: float,
        overlap_s: float,
        metrics: ReconcileMetrics,
        on_confirmed_outcome: Callable[[str | None, bool], None] | None = None,
        max_pages: int = MAX_PAGES,
        max_reservations: int = MAX_RESERVATIONS,
    ) -> None:
        self.backend = backend
        self.client = client
        self.store = store
        self._digest = digest
        self._api_key = api_key
        self.company_id = company_id
        self.interval_s = interval_s
        self.grace = timedelta(seconds=grace_s)
        self.overlap_s = overlap_s
        self.metrics = metrics
        self._on_confirmed = on_confirmed_outcome
        self.max_pages = max_pages
        self.max_reservations = max_reservations
        self._task: asyncio.Task[None] | None = None
        self.last: Summary | None = None

    def __repr__(self) -> str:  # the api_key never prints
        return f"Reconciler(company_id={self.company_id!r}, interval_s={self.interval_s})"

    async def run_pass(self, now: float | None = None) -> Summary:
        """One pass (see the module docstring); never raises for a failing upstream or store."""
        try:
            async with self.backend.session() as session:
                if session is None:
                    self.metrics.passes.labels("locked").inc()
                    return Summary(ran=False)
                summary = await self._pass(session, time.time() if now is None else now)
        except CallsUnavailable as exc:
            summary = Summary(errors=1, error=f"core api: {exc}")
        except (OSError, TimeoutError) as exc:
            summary = Summary(errors=1, error=f"ledger: {type(exc).__name__}")
        except Exception as exc:  # asyncpg's errors and anything unforeseen: next interval
            summary = Summary(errors=1, error=f"ledger: {type(exc).__name__}")
        if summary.errors:
            self.metrics.passes.labels("error").inc()
            log.warning(
                "reconciliation pass failed; retried next interval", extra={"error": summary.error}
            )
        else:
            self.metrics.passes.labels("ok").inc()
        self.last = summary
        return summary

    async def _pass(self, session: Session, now: float) -> Summary:
        watermark = await session.load_watermark()
        reservations = await session.open_reservations(now, self.max_reservations)
        if watermark is None:
            oldest = _epoch(reservations[0].at) if reservations else now
            start = min(oldest, now) - self.overlap_s
        else:
            start = watermark - self.overlap_s
        read = await read_calls(
            self.client,
            api_key=self._api_key,
            company_id=self.company_id,
            start=start,
            end=now,
            digest=self._digest,
            max_pages=self.max_pages,
        )
        self.metrics.calls_read.inc(len(read.calls))
        reached = read.reached
        if len(reservations) >= self.max_reservations:
            reached = min(reached, _epoch(reservations[-1].at))
        taken = await session.taken_calls([c.uuid for c in read.calls])
        # not_called only once expires_at + grace is older than the overlap (a late call).
        decide_at = min(reached, now - self.overlap_s) if not read.truncated else reached
        outcomes = match(
            (r for r in map(_reservation, reservations) if r is not None),
            read.calls,
            now=datetime.fromtimestamp(decide_at, UTC),
            grace=self.grace,
            taken_calls=taken,
        )
        settled = await session.settle(outcomes)
        await add_reconciled(self.store, settled.items)
        new_mark = max(reached, watermark or reached)
        await session.save_watermark(new_mark)
        summary = Summary(
            calls_read=len(read.calls),
            pages=read.pages,
            reservations=len(reservations),
            settled=settled.changed,
            confirmed_not_called=settled.confirmed_not_called,
            watermark=datetime.fromtimestamp(new_mark, UTC).isoformat(),
        )
        for outcome in outcomes:
            setattr(summary, outcome.call_outcome, getattr(summary, outcome.call_outcome) + 1)
            self.metrics.outcomes.labels(outcome.call_outcome).inc()
        summary.matched = summary.called + summary.late_call
        self.metrics.confirmed_not_called.inc(settled.confirmed_not_called)
        if self._on_confirmed is not None:
            for publisher, outcome in settled.confirmed:
                self._on_confirmed(publisher, outcome != NOT_CALLED)
        return summary

    # -- the background task ---------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="reconcile")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.run_pass()

    # -- POST /admin/reconcile -------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        summary = await self.run_pass()
        return Response(_encoder.encode(summary), media_type="application/json")


class ReconcileOff(RequestError):
    status, error = 409, "reconcile_off"
    default_message = (
        "reconciliation is off: set GATEWAY_RECONCILE_API_KEY (and GATEWAY_RECONCILE_COMPANY_ID)"
    )


async def _off(request: Request) -> Response:
    raise ReconcileOff()


def reconcile_routes(reconciler: Reconciler | None, token: str | None) -> list[Route]:
    handler = reconciler.handle if reconciler is not None else _off
    return [Route("/admin/reconcile", guarded(AdminAuth(token), handler), methods=["POST"])]


def _epoch(text: str) -> float:
    return parse_at(text)


def _reservation(row: Row) -> Reservation | None:
    """The matcher's view of a reservation event. Without a caller or an inbound number it
    can match no call and ends ``not_called``; without ``expires_at`` its ``at`` stands in."""
    try:
        at = datetime.fromisoformat(row.at)
    except ValueError:
        return None
    try:
        expires = datetime.fromisoformat(row.expires_at) if row.expires_at else at
    except ValueError:
        expires = at
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return Reservation(row.request_id, row.caller or "", row.inbound_number or "", at, expires)


def build_reconciler(
    settings: Any,
    ledger: Any,
    client: CoreApiClient,
    metrics: ReconcileMetrics,
    on_confirmed_outcome: Callable[[str | None, bool], None] | None = None,
) -> Reconciler | None:
    """The reconciler the settings ask for: with ``GATEWAY_RECONCILE_API_KEY``, or with
    ``--sandbox`` against the sandbox's seeded key (its callers log calls in company 1)."""
    api_key = settings.reconcile_api_key.reveal() if settings.reconcile_api_key else None
    company_id = settings.reconcile_company_id
    interval_s = settings.reconcile_interval_s
    if api_key is None and settings.sandbox:
        api_key, company_id = SANDBOX_API_KEY, company_id or SANDBOX_COMPANY_ID
        interval_s = min(interval_s, SANDBOX_INTERVAL_MAX_S)  # the funnel within a minute
    if api_key is None:
        return None
    backend: Backend
    if settings.ledger_url is not None and not settings.sandbox:
        backend = PostgresBackend(
            settings.ledger_url.reveal(), timeout_s=settings.ledger_timeout_ms / 1000
        )
    else:
        backend = MemoryBackend(ledger.store)
    return Reconciler(
        backend,
        client,
        store=ledger.store,
        digest=ledger.materializer.caller_digest,
        api_key=api_key,
        company_id=company_id,
        interval_s=interval_s,
        grace_s=settings.reconcile_grace_s,
        overlap_s=settings.reconcile_overlap_s,
        metrics=metrics,
        on_confirmed_outcome=on_confirmed_outcome,
    )
