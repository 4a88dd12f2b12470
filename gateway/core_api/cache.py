"""Where lookup answers are kept for ``GATEWAY_LOOKUP_CACHE_TTL_S``.

Two stores behind one small interface: Redis when ``GATEWAY_REDIS_URL`` is set (shared by
every replica), else a bounded in-process LRU. Only 200 answers are stored, with the
upstream's own headers, so ``Link`` can be re-pointed per client when served.

The key is a digest of (upstream, path, raw query). The query holds ``api_key`` and
``company_id``, so two clients with different credentials never share an entry, and
no key ever appears in Redis, logs or metrics in the clear.

Redis is an optimisation here, never a dependency: every call has a short timeout and no
retries; a failure raises :class:`CacheError` (counted ``error``, the lookup goes
upstream) and the store is then skipped for :data:`COOLDOWN_S` (:class:`CacheBypassed`,
counted ``bypass``) so a dead Redis costs one timeout per second, not one per lookup.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any, Protocol

import msgspec
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.core_api.routes import Upstream
from gateway.upstream.answer import UpstreamAnswer

KEY_PREFIX = "gw:lookup:"
COOLDOWN_S = 1.0
MAX_CONNECTIONS = 16
POOL_WAIT_S = 1.0
ENTRY_OVERHEAD = 256  # bytes charged per in-process entry besides its body


class CacheError(Exception):
    """The store failed this call."""


class CacheBypassed(CacheError):
    """The store is being skipped after a recent failure."""


def cache_key(upstream: Upstream, path: str, query: bytes) -> str:
    digest = hashlib.blake2b(digest_size=20, person=b"gw-lookup-v1")
    digest.update(upstream.value.encode())
    digest.update(b"\0")
    digest.update(path.encode())
    digest.update(b"\0")
    digest.update(query)
    return KEY_PREFIX + digest.hexdigest()


class LookupCache(Protocol):
    async def get(self, key: str) -> UpstreamAnswer | None: ...

    async def set(self, key: str, answer: UpstreamAnswer, ttl_s: float) -> None: ...

    async def close(self) -> None: ...


class MemoryLookupCache:
    """An LRU bounded by bytes (bodies plus a fixed overhead per entry)."""

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
        size = len(answer.body) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.used -= old[2]
        self._entries[key] = (time.monotonic() + ttl_s, answer, size)
        self.used += size
        while self.used > self.max_bytes:
            _, (_, _, evicted) = self._entries.popitem(last=False)
            self.used -= evicted

    async def close(self) -> None:
        self._entries.clear()
        self.used = 0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[bytes, str, list[tuple[str, str]]])


class RedisLookupCache:
    """Entries as msgpack ``(body, content_type, headers)`` with a millisecond TTL."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._skip_until = 0.0

    async def get(self, key: str) -> UpstreamAnswer | None:
        raw = await self._call(self._client.get, key)
        if raw is None:
            return None
        try:
            body, content_type, headers = _decoder.decode(raw)
        except msgspec.DecodeError:
            return None  # written by something else; treat as a miss and overwrite
        return UpstreamAnswer(200, body, content_type, tuple(headers))

    async def set(self, key: str, answer: UpstreamAnswer, ttl_s: float) -> None:
        value = _encoder.encode((answer.body, answer.content_type, list(answer.headers)))
        await self._call(self._client.set, key, value, px=max(1, int(ttl_s * 1000)))

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self._skip_until:
            raise CacheBypassed("skipping redis after a recent failure")
        try:
            return await method(*args, **kwargs)
        except (RedisError, OSError, TimeoutError) as exc:
            self._skip_until = time.monotonic() + COOLDOWN_S
            raise CacheError(type(exc).__name__) from None

    async def close(self) -> None:
        await self._client.aclose()


def redis_client(url: str, timeout_s: float) -> Any:
    """A small redis.asyncio client for lookups: short timeouts, no retries."""
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 0),
    }
    if url.startswith(("redis+cluster://", "rediss+cluster://")):
        plain = url.replace("+cluster://", "://", 1)
        return RedisCluster.from_url(plain, **options)
    # Blocking pool: a burst of lookups waits (briefly) for a connection instead of
    # failing with "too many connections" and tripping the cooldown.
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S, **options
    )
    return Redis.from_pool(pool)
