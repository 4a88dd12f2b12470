"""Where an auction's winning reservation came from: uuid -> (auction, destination).

A confirmation names only the uuid and the auction key, and may land on any replica, so
each winner is remembered until its ``expires_at`` where every replica sees it: in
Redis when ``GATEWAY_REDIS_URL`` is set (through the process's one Redis seam, with its
timeout and error), in process otherwise (one replica, as the in-process shield).

Only winners are remembered. A confirmation for any other uuid finds nothing and is
answered 404 without being forwarded: a losing reservation can never be confirmed
through the gateway. Entries are keyed by a BLAKE2b digest of (auction key, uuid), so
neither the auction key nor a destination key ever appears in a Redis key name; the
value holds names only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from hashlib import blake2b
from typing import Protocol

import msgspec

from gateway.wire.redis import RedisSeam

_PERSON = b"rtbgw-auction-v1"
_PREFIX = "rtbgw:auction:"


class Route(msgspec.Struct, frozen=True):
    """The auction and destination (names) a winning reservation came from."""

    auction: str
    destination: str


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Route)


def route_digest(auction_key: str, uuid: str) -> str:
    h = blake2b(digest_size=16, person=_PERSON)
    for part in (auction_key, uuid.lower()):
        raw = part.encode("utf-8")
        h.update(b"%d:" % len(raw))
        h.update(raw)
    return h.hexdigest()


class RouteStore(Protocol):
    async def remember(self, digest: str, route: Route, expires_ms: int) -> bool:
        """Keep ``route`` until ``expires_ms`` (epoch ms); False when refused (full)."""
        ...

    async def find(self, digest: str) -> Route | None: ...


def wall_ms() -> int:
    return int(time.time() * 1000)


class MemoryRouteStore:
    """In process, bounded: expired entries make room first; when every entry is still
    live, a new one is refused (counted by the caller) rather than evicting a live
    winner, whose confirmation would then be refused."""

    def __init__(self, max_entries: int = 100_000, clock_ms: Callable[[], int] = wall_ms):
        self._max = max(1, max_entries)
        self._clock_ms = clock_ms
        # Insertion order is close to expiry order (similar lifetimes): sweep from the front.
        self._entries: OrderedDict[str, tuple[str, str, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def remember(self, digest: str, route: Route, expires_ms: int) -> bool:
        now = self._clock_ms()
        if expires_ms <= now:
            return True  # nothing to confirm any more
        if len(self._entries) >= self._max and digest not in self._entries:
            self._sweep(now)
            if len(self._entries) >= self._max:
                return False
        self._entries[digest] = (route.auction, route.destination, expires_ms)
        return True

    async def find(self, digest: str) -> Route | None:
        found = self._entries.get(digest)
        if found is None:
            return None
        auction, destination, expires_ms = found
        if expires_ms <= self._clock_ms():
            del self._entries[digest]
            return None
        return Route(auction, destination)

    def _sweep(self, now: int) -> None:
        expired = [d for d, (_, _, expires) in self._entries.items() if expires <= now]
        for digest in expired:
            del self._entries[digest]


class RedisRouteStore:
    """Shared by every replica: ``SET key value PX ttl``, read with ``GET``. Failures
    raise the seam's :class:`~gateway.wire.redis.RedisUnavailable`."""

    def __init__(self, seam: RedisSeam, clock_ms: Callable[[], int] = wall_ms) -> None:
        self._seam = seam
        self._clock_ms = clock_ms

    async def remember(self, digest: str, route: Route, expires_ms: int) -> bool:
        ttl_ms = expires_ms - self._clock_ms()
        if ttl_ms <= 0:
            return True
        client = self._seam.client
        await self._seam.call(
            "auction_remember", client.set(_PREFIX + digest, _encoder.encode(route), px=ttl_ms)
        )
        return True

    async def find(self, digest: str) -> Route | None:
        raw = await self._seam.call("auction_find", self._seam.client.get(_PREFIX + digest))
        if raw is None:
            return None
        try:
            return _decoder.decode(raw)
        except msgspec.DecodeError:
            return None
