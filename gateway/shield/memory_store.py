"""The in-process shield store: the default when no Redis is configured.

Same semantics as the Redis store (see :class:`~gateway.shield.base.ShieldStore`), for
one process: bounded by an LRU cap (``GATEWAY_SHIELD_MEMORY_MAX_ENTRIES``), entries
expire by the gateway's clock, leases by the store's own clock (injectable, so expiry is
tested without waiting). Nothing here awaits anything but a waiter's sleep, so each
operation is atomic on the event loop, as a Lua script is atomic in Redis.
"""

from __future__ import annotations

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

    def __init__(self, max_entries: int = 1_000_000, clock_ms: Callable[[], int] = wall_ms):
        self._max = max(1, max_entries)
        self._clock_ms = clock_ms
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
        return None

    async def close(self) -> None:
        self._wakeups.wake_all()

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

    async def store(self, digest: str, token: str, entry: Entry, index: str) -> None:
        if digest not in self._entries:
            self._entries[digest] = (pack(entry), index)
            if index:
                self._index[index] = digest
            while len(self._entries) > self._max:
                self._drop(next(iter(self._entries)))
        self._release_lease(digest, token)
        self._wakeups.wake(digest)

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
        found = self._entries.get(digest)
        if found is None or found[0][_UUID] != uuid.lower():
            return None
        if answer is None:
            self._drop(digest)
        else:
            entry = unpack(found[0])
            replaced = Entry(answer, entry.expires_ms, entry.uuid)
            self._entries[digest] = (pack(replaced), found[1])
        return digest

    def _release_lease(self, digest: str, token: str) -> None:
        lease = self._leases.get(digest)
        if lease is not None and lease.token == token:
            del self._leases[digest]

    def _drop(self, digest: str) -> None:
        found = self._entries.pop(digest, None)
        if found is not None and found[1] and self._index.get(found[1]) == digest:
            del self._index[found[1]]
