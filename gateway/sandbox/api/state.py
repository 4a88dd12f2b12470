"""The Core API sandbox's mutable state: its data, and what is in flight right now.

Tests in the same process as the sandbox use the hooks directly (``hold()``,
``release()``, ``await wait_in_flight(n)``) to make concurrency deterministic: held
requests stay in flight until released, so "how many were in flight at once" is a count,
never a race against a timer. Out of process the same hooks are HTTP routes
(``/_sandbox/core_api/...``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from gateway.sandbox.api.data import CoreData
from gateway.sandbox.api.postback import seed_lists
from gateway.sandbox.api.seeding import seed

DEFAULT_MAX_CONCURRENCY = 10


class CoreApiState:
    def __init__(self, received: deque[dict[str, Any]] | None = None) -> None:
        self.data: CoreData = seed()
        self.caller_lists = seed_lists(self.data)
        #: every Core API request that reached the sandbox (shared with SandboxState)
        self.received: deque[dict[str, Any]] = (
            received if received is not None else deque(maxlen=10_000)
        )
        self.in_flight = 0
        self.max_in_flight = 0
        self.rejected = 0
        self._changed = asyncio.Event()
        self._held = False
        self._released = asyncio.Event()

    def reset(self) -> None:
        """Fresh seeded data and counters (``received`` is cleared separately)."""
        self.data = seed()
        self.caller_lists = seed_lists(self.data)
        self.max_in_flight = self.in_flight
        self.rejected = 0

    def enter(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._notify()

    def leave(self) -> None:
        self.in_flight -= 1
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_in_flight(self, count: int) -> None:
        """Return once at least ``count`` Core API requests are in flight at once."""
        while self.in_flight < count:
            await self._changed.wait()

    @property
    def held(self) -> bool:
        return self._held

    def hold(self) -> None:
        """Admitted requests wait (in flight) until :meth:`release`."""
        self._held = True
        self._released = asyncio.Event()

    def release(self) -> None:
        self._held = False
        self._released.set()

    async def wait_released(self) -> None:
        if self._held:
            await self._released.wait()

    def stats(self) -> dict[str, Any]:
        return {
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "rejected_429": self.rejected,
            "received": len(self.received),
            "held": self._held,
        }
