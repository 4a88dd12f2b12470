"""Per-publisher and per-RTB-key rate limits: GCRA buckets in Redis, in process as a fallback.

Why GCRA (the "generic cell rate algorithm", a token bucket kept as one timestamp): one
number per bucket, one Redis round trip per check, an exact ``Retry-After`` for free,
and a burst allowance without a window edge where twice the rate gets through.

The spec format (``GATEWAY_RATE_LIMIT_PER_PUBLISHER``, ``GATEWAY_RATE_LIMIT_PER_KEY``) and
its parser live in :mod:`gateway.protect.rules`, below config.py that validates them.

Where the count lives: with ``GATEWAY_REDIS_URL`` the bucket is one Redis key
(``rtbgw:rl:{pub|key}:<hash>``, the name hashed so no key or unbounded id is stored in
the clear) updated by one Lua script using the server's clock, so every replica shares
it. The script runs on the Redis seam's ping-path client (``gateway/wire/redis.py``). A Redis
call that fails or takes longer than ``GATEWAY_REDIS_TIMEOUT_MS`` falls back to this
replica's in-process bucket (limits then hold per replica), and the seam's breaker skips
Redis for a moment after repeated failures, so an outage never adds more than a few
timeouts to pings. A ping refused by one limit has still used a unit of the other.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.wire.redis import RedisUnavailable
from gateway.wire.resp import Script

if TYPE_CHECKING:
    from gateway.wire.redis import RedisSeam

from gateway.protect.rules import Rate, RateLimits


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_s: float = 0.0
    scope: str = ""  # which limit refused: "publisher" or "RTB key"


ALLOWED = Verdict(True)


class MemoryBuckets:
    """GCRA timestamps in process, least recently used dropped past ``max_entries``.

    Dropping a bucket forgets its debt (fails open), which is the right side to err on
    for a store an attacker can fill with made-up publisher ids.
    """

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._tat: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._tat)

    def check(self, bucket: str, rate: Rate) -> float:
        """0 when allowed (and counted), else the seconds until it would be."""
        now = self._clock()
        tat = max(self._tat.get(bucket, now), now)
        new_tat = tat + rate.interval_s
        wait = new_tat - now - rate.tolerance_s
        if wait > 1e-9:
            return wait
        self._tat[bucket] = new_tat
        self._tat.move_to_end(bucket)
        if len(self._tat) > self._max:
            self._tat.popitem(last=False)
        return 0.0


# GCRA on the Redis server's clock (so replicas with skewed clocks agree), in
# microseconds. Returns 0 when allowed, else the microseconds to wait.
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - now - tolerance
if wait > 0 then return wait end
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms)
return 0
"""
_GCRA = Script(GCRA_LUA)


class RateLimiter:
    """Checks pings against the per-publisher and per-key limits.

    ``redis`` is the process's Redis seam (or ``None``); ``on_fallback`` is called once
    per check answered in process because Redis failed or is being skipped.
    """

    def __init__(
        self,
        per_publisher: RateLimits,
        per_key: RateLimits,
        *,
        redis: RedisSeam | None = None,
        on_fallback: Callable[[], None] | None = None,
        memory: MemoryBuckets | None = None,
    ) -> None:
        self.per_publisher = per_publisher
        self.per_key = per_key
        self._redis = redis
        self._on_fallback = on_fallback
        self._memory = memory or MemoryBuckets()

    @property
    def active(self) -> bool:
        return self.per_publisher.active or self.per_key.active

    async def check(self, rtb_key: str, publisher_id: str | None) -> Verdict:
        """Allowed, or refused with the seconds until the next ping would be allowed.
        ``publisher_id`` None (call data writing names none): only the key's limit."""
        checks: list[tuple[str, str, Rate]] = []
        key_rate = self.per_key.default
        if key_rate is not None:
            checks.append(("RTB key", _bucket("key", rtb_key), key_rate))
        pub_rate = None if publisher_id is None else self.per_publisher.for_name(publisher_id)
        if pub_rate is not None and publisher_id is not None:
            checks.append(("publisher", _bucket("pub", publisher_id), pub_rate))
        worst = ALLOWED
        for scope, bucket, rate in checks:
            wait = await self._check_one(bucket, rate)
            if wait > worst.retry_after_s:
                worst = Verdict(False, wait, scope)
        return worst

    async def _check_one(self, bucket: str, rate: Rate) -> float:
        """0 when allowed, else the seconds to wait."""
        redis = self._redis
        if redis is not None:
            breaker = redis.breaker
            if breaker.allow():
                args = (round(rate.interval_s * 1_000_000), round(rate.tolerance_s * 1_000_000))
                try:
                    wait_us = await redis.run("rate_limit", _GCRA, (bucket,), args)
                except RedisUnavailable:  # fall back, never fail the ping
                    breaker.failure()
                else:
                    breaker.success()
                    return max(0, int(wait_us)) / 1_000_000
            if self._on_fallback is not None:
                self._on_fallback()
        return self._memory.check(bucket, rate)


def _bucket(kind: str, name: str) -> str:
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()
    return f"rtbgw:rl:{kind}:{digest}"


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, never 0 (a client reading 0 would retry at once)."""
    return str(max(1, math.ceil(seconds)))
