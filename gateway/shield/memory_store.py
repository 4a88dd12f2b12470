"""The in-process shield store: the default when no Redis is configured.

Same semantics as the Redis store (see :class:`~gateway.shield.base.ShieldStore`), for
one process: bounded by an LRU cap (``GATEWAY_SHIELD_MEMORY_MAX_ENTRIES``), entries
expire by the gateway's clock, leases by the store's own clock (injectable, so expiry is
tested without waiting). Nothing here awaits anything but a waiter's sleep, so each
operation is atomic on the event loop, as a Lua script is atomic in Redis.

Expired answers are *freed*, not only hidden, as Redis frees a key at its TTL: without
that, a burst of callers kept its memory (about a kilobyte each) until the LRU cap
pushed it out, long after every bid had expired. An expiry heap of ``(expires_ms,
digest)`` finds them in expiry order; each store frees a few (``SWEEP_PER_STORE``) and a
timer started by :meth:`start` frees the rest in small batches (``SWEEP_BATCH`` per
event-loop turn) so an idle store also shrinks. Heap items of answers that left early
(LRU cap, confirmation) are skipped when reached, and the heap is rebuilt from the live
answers once it holds twice as many items: it stays bounded by the cap too.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from gateway.shield.base import (
    FOUND,
    HELD,
    LEASED,
    RELAY_TTL_MS,
    RELAYED,
    Lookup,
    StoreEvents,
)
from gateway.shield.entry import Entry, Packed, pack, unpack
from gateway.shield.waiting import Wakeups, wait_settled
from gateway.wire.answer import UpstreamAnswer

_EXPIRES = 3  # positions in a Packed entry
_UUID = 4

# Expired answers freed by each store: more than one, so the sweep outpaces any insert
# rate; few, so a store never costs more than a few microseconds extra.
SWEEP_PER_STORE = 4
# The timer's batch per event-loop turn (about a millisecond of work) and its period.
SWEEP_BATCH = 2000
SWEEP_INTERVAL_S = 1.0


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class _Lease:
    token: str
    expires_ms: int


@dataclass(slots=True)
class _Relay:
    token: str
    answer: UpstreamAnswer
    expires_ms: int


class MemoryShieldStore:
    shared = False

    def __init__(
        self,
        max_entries: int = 200_000,
        clock_ms: Callable[[], int] = wall_ms,
        *,
        on_evict: Callable[[], None] | None = None,
        sweep_interval_s: float = SWEEP_INTERVAL_S,
    ):
        self._max = max(1, max_entries)
        self._clock_ms = clock_ms
        self._on_evict = on_evict
        self._sweep_interval_s = sweep_interval_s
        self._sweeper: asyncio.Task[None] | None = None
        # (expires_ms, digest) of every answer stored, soonest first (see the docstring).
        self._expiry: list[tuple[int, str]] = []
        # digest -> (packed entry, index digest): plain tuples the cycle GC ignores.
        self._entries: OrderedDict[str, tuple[Packed, str]] = OrderedDict()
        self._index: dict[str, str] = {}
        self._leases: dict[str, _Lease] = {}
        self._relays: OrderedDict[str, _Relay] = OrderedDict()
        self._wakeups = Wakeups()

    @property
    def events_live(self) -> bool:
        return True

    def set_events(self, events: StoreEvents) -> None:
        return None

    async def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="shield-sweep")

    async def close(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        self._wakeups.wake_all()

    def sweep(self, limit: int = SWEEP_BATCH) -> int:
        """Free up to ``limit`` answers expired by the store's clock; how many were freed.

        Heap items for answers already gone count towards ``limit`` too, so a call is
        bounded work whatever the heap holds.
        """
        heap, entries = self._expiry, self._entries
        clock = self._clock_ms()
        freed = 0
        for _ in range(limit):
            if not heap or heap[0][0] > clock:
                break
            expires_ms, digest = heapq.heappop(heap)
            found = entries.get(digest)
            if found is not None and found[0][_EXPIRES] == expires_ms:
                self._drop(digest)
                freed += 1
        return freed

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            await self._sweep_due()

    async def _sweep_due(self) -> None:
        """Everything due now, a batch per event-loop turn so pings run in between."""
        for _ in range(len(self._expiry) // SWEEP_BATCH + 1):
            self.sweep(SWEEP_BATCH)
            heap = self._expiry  # a store in between may have rebuilt it
            if not heap or heap[0][0] > self._clock_ms():
                return
            await asyncio.sleep(0)

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, digest: str, now_ms: int) -> Entry | None:
        """A live stored entry, without leasing: the in-process hit path, no awaits."""
        found = self._entries.get(digest)
        if found is None or found[0][_EXPIRES] <= now_ms:
            return None
        self._entries.move_to_end(digest)
        return unpack(found[0])

    async def acquire(
        self, digest: str, token: str, lease_ms: int, now_ms: int, holder: str = ""
    ) -> Lookup:
        found = self._entries.get(digest)
        if found is not None:
            if found[0][_EXPIRES] > now_ms:
                self._entries.move_to_end(digest)
                return Lookup(FOUND, entry=unpack(found[0]))
            self._drop(digest)
        clock = self._clock_ms()
        lease = self._leases.get(digest)
        if lease is not None and lease.expires_ms <= clock:
            del self._leases[digest]
            lease = None
        if lease is not None and holder and lease.token == holder:
            return Lookup(HELD, holder=holder)
        if holder:
            relay = self._relays.get(digest)
            if relay is not None and relay.token == holder and relay.expires_ms > clock:
                return Lookup(RELAYED, relayed=relay.answer)
        if lease is None:
            self._leases[digest] = _Lease(token, clock + lease_ms)
            return Lookup(LEASED)
        return Lookup(HELD, holder=lease.token)

    async def wait(
        self,
        digest: str,
        holder: str,
        token: str,
        lease_ms: int,
        deadline: float,
        clock_ms: Callable[[], int],
    ) -> Lookup:
        return await wait_settled(
            self.acquire, self._wakeups, digest, holder, token, lease_ms, deadline, clock_ms
        )

    async def renew(self, digest: str, token: str, lease_ms: int) -> bool:
        lease = self._leases.get(digest)
        clock = self._clock_ms()
        if lease is None or lease.token != token or lease.expires_ms <= clock:
            return False
        lease.expires_ms = clock + lease_ms
        return True

    async def store(self, digest: str, token: str, entry: Entry, index: str) -> bool:
        written = digest not in self._entries
        if written:
            packed = pack(entry)
            self._entries[digest] = (packed, index)
            if index:
                self._index[index] = digest
            heapq.heappush(self._expiry, (packed[_EXPIRES], digest))
            self.sweep(SWEEP_PER_STORE)
            while len(self._entries) > self._max:
                self._drop(next(iter(self._entries)))
                if self._on_evict is not None:
                    self._on_evict()
            if len(self._expiry) > 2 * self._max:
                self._rebuild_expiry()
        self._release_lease(digest, token)
        self._wakeups.wake(digest)
        return written

    async def release(self, digest: str, token: str, relayed: UpstreamAnswer | None) -> None:
        if relayed is not None:
            clock = self._clock_ms()
            self._relays.pop(digest, None)
            self._relays[digest] = _Relay(token, relayed, clock + RELAY_TTL_MS)
            while self._relays:
                oldest = next(iter(self._relays.values()))
                if oldest.expires_ms > clock:
                    break
                self._relays.popitem(last=False)
        self._release_lease(digest, token)
        self._wakeups.wake(digest)

    async def confirm(self, index: str, uuid: str, answer: UpstreamAnswer | None) -> str | None:
        digest = self._index.get(index)
        if digest is None:
            return None
        return digest if await self.confirm_digest(digest, uuid, answer) else None

    async def confirm_digest(self, digest: str, uuid: str, answer: UpstreamAnswer | None) -> bool:
        found = self._entries.get(digest)
        if found is None or found[0][_UUID] != uuid.lower():
            return False
        if answer is None:
            self._drop(digest)
        else:
            entry = unpack(found[0])
            replaced = Entry(answer, entry.expires_ms, entry.uuid)
            self._entries[digest] = (pack(replaced), found[1])
        return True

    def _rebuild_expiry(self) -> None:
        """Only live answers' items: the heap had filled with those of evicted ones."""
        heap = [(found[0][_EXPIRES], digest) for digest, found in self._entries.items()]
        heapq.heapify(heap)
        self._expiry = heap

    def _release_lease(self, digest: str, token: str) -> None:
        lease = self._leases.get(digest)
        if lease is not None and lease.token == token:
            del self._leases[digest]

    def _drop(self, digest: str) -> None:
        found = self._entries.pop(digest, None)
        if found is not None and found[1] and self._index.get(found[1]) == digest:
            del self._index[found[1]]
