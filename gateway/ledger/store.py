"""What a ledger store is: where the background writer puts rows and the export reads them.

Two implementations: memory.py (a bounded ring in this process) and postgres.py (shared
by every replica). The writer calls ``write`` with batches in the order events were
recorded, each row with its ``at`` as epoch seconds (so no store parses it back);
a ``write`` that raises is retried with the same rows, so a store must write
each ``(request_id, leg)`` once however often it is given it (or, in process, never fail
half-way). ``export`` yields rows with ``since <= at < until``, oldest first. Both keep
publisher analytics' hourly rollups as they write (rollups.py): ``analytics`` reads them
summed, ``add_reconciled`` adds reconciliation's columns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from gateway.ledger.events import Row
from gateway.ledger.rollups import Grouped, Reconciled

# A row with its ``at`` in epoch seconds.
Stamped = tuple[float, Row]


class StoreUnavailable(Exception):
    """The store cannot answer now (PostgreSQL down or not migrated yet)."""


class LedgerStore(Protocol):
    # Where the ledger lives, fit to print (a URL with its password masked).
    description: str

    async def start(self) -> None: ...

    async def write(self, rows: list[Stamped]) -> None: ...

    def export(
        self, since: float | None, until: float | None, limit: int
    ) -> AsyncIterator[Row]: ...

    async def add_reconciled(self, items: list[Reconciled]) -> None: ...

    async def analytics(
        self, since: float, until: float, by: str, granularity: str, limit: int
    ) -> list[Grouped]: ...

    async def close(self) -> None: ...
