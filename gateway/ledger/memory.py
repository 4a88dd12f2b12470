"""The in-process ledger store: the most recent events of this process, in a bounded ring.

The default without ``GATEWAY_LEDGER_URL`` and with ``--sandbox``, as the in-process
shield is: one replica (with ``--workers N`` each worker keeps its own), gone on restart.
``GATEWAY_LEDGER_MEMORY_MAX_EVENTS`` bounds it; the oldest rows make room for new ones
(counted in ``evicted``). Its analytics rollups (rollups.py) are kept in ``write`` and
bounded on their own, so they outlive the ring's events. Rows arrive in the order they
were answered, so the ring is ordered by ``at`` and an export can stop at the first row
past ``until``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable

from gateway.ledger import memory_reconcile
from gateway.ledger.events import Row
from gateway.ledger.matching import Outcome
from gateway.ledger.rollups import Grouped, MemoryRollups, Reconciled, group
from gateway.ledger.settling import add_reconciled
from gateway.ledger.store import Stamped


class MemoryLedgerStore:
    description = "in-process"
    # Rows per write: the write (ring and rollups) is CPU on the pings' loop, so batches
    # stay small enough to hold it ~1 ms.
    batch_max = 256

    def __init__(
        self,
        max_events: int,
        max_rollups: int = 100_000,
        on_evict: Callable[[], None] | None = None,
    ) -> None:
        self.max_events = max_events
        # A confirmation finds its reservation among as many uuids as the ring holds.
        self.rollups = MemoryRollups(max_rollups, max_uuids=max_events, on_evict=on_evict)
        self._rows: deque[tuple[float, Row]] = deque(maxlen=max_events)
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._rows)

    async def start(self) -> None:
        return None

    async def write(self, rows: list[Stamped]) -> None:
        overflow = len(self._rows) + len(rows) - self.max_events
        if overflow > 0:
            self.evicted += min(overflow, len(rows) + len(self._rows))
        self._rows.extend(rows)
        self.rollups.add(rows)

    async def add_reconciled(self, items: list[Reconciled]) -> None:
        self.rollups.add_reconciled(items)

    async def analytics(
        self, since: float, until: float, by: str, granularity: str, limit: int
    ) -> list[Grouped]:
        return group(self.rollups.between(since, until), by, granularity)[:limit]

    async def export(
        self, since: float | None, until: float | None, limit: int
    ) -> AsyncIterator[Row]:
        # A snapshot: writes during a long export neither break nor join it.
        snapshot = list(self._rows)
        sent = 0
        for at, row in snapshot:
            if sent >= limit:
                return
            if since is not None and at < since:
                continue
            if until is not None and at >= until:
                return
            yield row
            sent += 1

    @property
    def rows(self) -> deque[Stamped]:
        """The ring itself, for reconciliation (memory_reconcile.py) to read and settle."""
        return self._rows

    async def open_reservations(self, until: float, limit: int) -> list[Row]:
        return memory_reconcile.open_reservations(self._rows, until, limit)

    async def settle(self, outcomes: list[Outcome]) -> int:
        settled = memory_reconcile.settle(list(self._rows), outcomes)
        await add_reconciled(self, settled.items)
        return settled.changed

    async def close(self) -> None:
        return None
