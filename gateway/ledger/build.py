"""The ledger as ``create_app`` builds it: its store, its secret, its counters."""

from __future__ import annotations

from gateway.config import Settings
from gateway.ledger.events import Materializer
from gateway.ledger.memory import MemoryLedgerStore
from gateway.ledger.store import LedgerStore
from gateway.ledger.writer import Ledger
from gateway.observe.metrics import Metrics


def build_store(settings: Settings, metrics: Metrics | None = None) -> LedgerStore:
    """PostgreSQL with ``GATEWAY_LEDGER_URL`` (never in ``--sandbox``), else in process."""
    if settings.ledger_url is None or settings.sandbox:
        return MemoryLedgerStore(
            settings.ledger_memory_max_events,
            settings.ledger_memory_max_rollups,
            on_evict=metrics.ledger_rollups_evicted.inc if metrics else None,
        )
    from gateway.ledger.postgres import PostgresLedgerStore

    return PostgresLedgerStore(
        settings.ledger_url.reveal(),
        retention_days=settings.ledger_retention_days,
        timeout_s=settings.ledger_timeout_ms / 1000,
    )


def build_ledger(settings: Settings, metrics: Metrics) -> Ledger:
    secret = settings.ledger_secret.reveal().encode() if settings.ledger_secret else None
    ledger = Ledger(
        build_store(settings, metrics),
        Materializer(secret),
        queue_max=settings.ledger_queue_max,
        flush_timeout_s=settings.ledger_flush_timeout_s,
        on_dropped=metrics.ledger_dropped.inc,
        on_written=metrics.ledger_written.inc,
        on_failure=metrics.ledger_write_failures.inc,
    )
    metrics.track(metrics.ledger_queue_depth, lambda: ledger.depth)
    return ledger
