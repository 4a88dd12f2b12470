"""Where lookup answers are kept for ``GATEWAY_LOOKUP_CACHE_TTL_S``.

Two stores behind one small interface: Redis when ``GATEWAY_REDIS_URL`` is set (shared by
every replica, its memory Redis's own, every entry with a TTL), else an in-process LRU
bounded by ``GATEWAY_LOOKUP_CACHE_MAX_BYTES`` counted as the entries really hold. Only 200
answers are stored, with the upstream's own headers, so ``Link`` can be re-pointed per
client when served.

The key is a digest of (upstream, path, raw query, credentials, generation). The query holds
``api_key``, ``company_id`` and a postback ``key``; the credentials digest
(gateway/core_api/credentials.py) adds, on routes that forward it, the ``Authorization``
header, so two clients with
different credentials never share an entry, and no secret ever appears in Redis, logs or
metrics in the clear. The generation is the route's cache group's counter: a write
through the gateway bumps it (:meth:`bump`), so every entry written before the write is
unreachable at once, on every replica that reads the same counter.

Redis is an optimisation here, never a dependency. Calls go through the process's Redis
seam (``gateway/wire/redis.py``): a short timeout and no retries; a failure raises
:class:`CacheError` (counted ``error``, the lookup goes upstream), and while the seam's
breaker is open after repeated failures the store is skipped (:class:`CacheBypassed`,
counted ``bypass``) so a dead Redis costs a timeout per second, not one per lookup.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from gateway.coreapi.client import Upstream
from gateway.coreapi.credentials import credentials_digest
from gateway.wire.answer import UpstreamAnswer
from gateway.wire.redis import RedisSeam, RedisUnavailable

KEY_PREFIX = "gw:lookup:"
GENERATION_PREFIX = "gw:lookup-gen:"
COOLDOWN_S = 1.0
MAX_CONNECTIONS = 16
# Per in-process entry besides what sys.getsizeof counts for its key, body, content
# type and header values: the OrderedDict slot and node, the (expires, answer, size)
# tuple and its float/int, the UpstreamAnswer and its headers tuple. tracemalloc over
# 20,000 real entries measured 314 B, plus 64 B per kept header (its (name, value)
# tuple and slot). Issue 15: charging len(body) + 256 held 8.2 kB per 258 B counted.
ENTRY_OVERHEAD = 320
HEADER_OVERHEAD = 64
# Expired entries dropped (at most) per insert: more than one, so sweeping outpaces
# inserting, and a small constant, so no insert pays for a backlog.
SWEEP_PER_INSERT = 8


class CacheError(Exception):
    """The store failed this call."""


class CacheBypassed(CacheError):
    """The store is being skipped after a recent failure."""


def cache_key(
    upstream: Upstream,
    path: str,
    query: bytes,
    authorization: str | None = None,
    generation: str = "",
) -> str:
    digest = hashlib.blake2b(digest_size=20, person=b"gw-lookup-v2")
    digest.update(upstream.value.encode())
    digest.update(b"\0")
    digest.update(path.encode())
    digest.update(b"\0")
    digest.update(query)
    digest.update(b"\0")
    digest.update(credentials_digest(query, authorization))  # adds Authorization
    digest.update(generation.encode())
    return KEY_PREFIX + digest.hexdigest()


class LookupCache(Protocol):
    async def get(self, key: str) -> UpstreamAnswer | None: ...

    async def set(self, key: str, answer: UpstreamAnswer, ttl_s: float) -> None: ...

    async def generation(self, group: str) -> int:
        """The shared write counter of a cache group (0 before its first write)."""
        ...

    async def bump(self, group: str) -> None:
        """Make every entry of ``group`` stored so far unreachable, for every reader."""
        ...

    async def close(self) -> None: ...


def entry_size(key: str, answer: UpstreamAnswer) -> int:
    """Bytes one in-process entry really holds: its objects as ``sys.getsizeof`` counts
    them (body, key, content type, every kept header value) plus the fixed structures
    around them, measured with tracemalloc (see :data:`ENTRY_OVERHEAD`)."""
    size = ENTRY_OVERHEAD + sys.getsizeof(key) + sys.getsizeof(answer.body)
    size += sys.getsizeof(answer.content_type)
    for _name, value in answer.headers:  # names are the shared KEPT_HEADERS literals
        size += HEADER_OVERHEAD + sys.getsizeof(value)
    return size


class MemoryLookupCache:
    """An LRU bounded by the bytes its entries really hold (:func:`entry_size`).

    Expired entries are swept from the least recently used end, at most
    :data:`SWEEP_PER_INSERT` per insert, so a flood of unique lookups that are never read
    again frees their memory as they lapse instead of waiting for the byte cap; the cap
    holds either way, since every held byte is counted.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self._entries: OrderedDict[str, tuple[float, UpstreamAnswer, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> UpstreamAnswer | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, answer, size = entry
        if expires <= time.monotonic():
            del self._entries[key]
            self.used -= size
            return None
        self._entries.move_to_end(key)
        return answer

    async def set(self, key: str, answer: UpstreamAnswer, ttl_s: float) -> None:
        size = entry_size(key, answer)
        if size > self.max_bytes:
            return
        now = time.monotonic()
        old = self._entries.pop(key, None)
        if old is not None:
            self.used -= old[2]
        self._sweep(now)
        self._entries[key] = (now + ttl_s, answer, size)
        self.used += size
        while self.used > self.max_bytes:
            _, (_, _, evicted) = self._entries.popitem(last=False)
            self.used -= evicted

    def _sweep(self, now: float) -> None:
        entries = self._entries
        for _ in range(SWEEP_PER_INSERT):
            if not entries:
                return
            oldest = next(iter(entries))
            expires, _, size = entries[oldest]
            if expires > now:
                return
            del entries[oldest]
            self.used -= size

    async def generation(self, group: str) -> int:
        # One process reads this store: the lookups' own per-process counter does the job.
        return 0

    async def bump(self, group: str) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()
        self.used = 0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[bytes, str, list[tuple[str, str]]])


class RedisLookupCache:
    """Entries as msgpack ``(body, content_type, headers)`` with a millisecond TTL.

    ``seam`` is the process's Redis seam, shared with the shield (the app closes it).
    """

    def __init__(self, seam: RedisSeam, *, timeout_s: float | None = None) -> None:
        self._seam = seam
        self._client = seam.client
        self._timeout_s = timeout_s

    async def get(self, key: str) -> UpstreamAnswer | None:
        raw = await self._call("lookup_get", self._client.get, key)
        if raw is None:
            return None
        try:
            body, content_type, headers = _decoder.decode(raw)
        except msgspec.DecodeError:
            return None  # written by something else; treat as a miss and overwrite
        return UpstreamAnswer(200, body, content_type, tuple(headers))

    async def set(self, key: str, answer: UpstreamAnswer, ttl_s: float) -> None:
        value = _encoder.encode((answer.body, answer.content_type, list(answer.headers)))
        await self._call("lookup_set", self._client.set, key, value, px=max(1, int(ttl_s * 1000)))

    async def generation(self, group: str) -> int:
        raw = await self._call("lookup_generation", self._client.get, GENERATION_PREFIX + group)
        try:
            return int(raw) if raw is not None else 0
        except ValueError:
            return 0

    async def bump(self, group: str) -> None:
        # No expiry: one small counter per group of the route table, and a counter that
        # vanished and restarted could make entries stored under its old values current.
        # Tried even while reads skip Redis: a missed bump is a stale read elsewhere.
        await self._call("lookup_bump", self._client.incr, GENERATION_PREFIX + group, always=True)

    async def _call(
        self,
        operation: str,
        method: Callable[..., Any],
        *args: Any,
        always: bool = False,
        **kw: Any,
    ) -> Any:
        breaker = self._seam.breaker
        if not always and not breaker.allow():
            raise CacheBypassed("skipping redis after recent failures")
        try:
            reply = await self._seam.call(operation, method(*args, **kw), timeout_s=self._timeout_s)
        except RedisUnavailable as exc:
            breaker.failure()
            raise CacheError(exc.reason) from None
        breaker.success()
        return reply

    async def close(self) -> None:
        return None  # the seam is the process's
