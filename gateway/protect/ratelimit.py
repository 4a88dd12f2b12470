"""Per-publisher and per-RTB-key rate limits: GCRA buckets in Redis, in process as a fallback.

Why GCRA (the "generic cell rate algorithm", a token bucket kept as one timestamp): one
number per bucket, one Redis round trip per check, an exact ``Retry-After`` for free,
and a burst allowance without a window edge where twice the rate gets through.

Spec format (``GATEWAY_RATE_LIMIT_PER_PUBLISHER``, ``GATEWAY_RATE_LIMIT_PER_KEY``)::

    RATE      := COUNT "/" UNIT [":" BURST]      e.g. 100/s   6000/m:500   20000/h
    UNIT      := s | m | h                       (second, minute, hour)
    BURST     := pings allowed back to back      (default: COUNT, i.e. one UNIT's worth)
    SPEC      := ITEM ("," ITEM)*
    ITEM      := RATE                            the default for every publisher / key
               | NAME "=" (RATE | "off")         an override for one publisher_id

``GATEWAY_RATE_LIMIT_PER_PUBLISHER="50/s, acme=500/s:1000, trusted=off"``: every
publisher 50 pings/s except ``acme`` (500/s, bursts of 1000) and ``trusted`` (no limit).
Overrides are by publisher only: keys are secrets, and ``check-config`` prints settings.
Unset or empty means no limit (and no Redis call).

Where the count lives: with ``GATEWAY_REDIS_URL`` the bucket is one Redis key
(``rtbgw:rl:{pub|key}:<hash>``, the name hashed so no key or unbounded id is stored in
the clear) updated by one Lua script using the server's clock, so every replica shares
it. The script runs on the Redis seam's ping-path client (``gateway/redis.py``). A Redis
call that fails or takes longer than ``GATEWAY_REDIS_TIMEOUT_MS`` falls back to this
replica's in-process bucket (limits then hold per replica), and the seam's breaker skips
Redis for a moment after repeated failures, so an outage never adds more than a few
timeouts to pings. A ping refused by one limit has still used a unit of the other.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.redis import RedisUnavailable
from gateway.resp import Script

if TYPE_CHECKING:
    from gateway.redis import RedisSeam

_RATE = re.compile(r"(\d+)\s*/\s*([smh])(?:\s*:\s*(\d+))?")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_NAME = re.compile(r"[^\s=,]{1,255}")


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` per ``period_s`` seconds with ``burst`` back to back."""

    count: int
    period_s: float
    burst: int

    @property
    def interval_s(self) -> float:
        """Seconds between two pings at the sustained rate (GCRA's emission interval)."""
        return self.period_s / self.count

    @property
    def tolerance_s(self) -> float:
        """How far ahead of now the bucket's timestamp may run (the burst)."""
        return self.interval_s * self.burst

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}[self.period_s]
        return f"{self.count}/{unit}:{self.burst}"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A default rate (or none) and per-name overrides (``None`` = unlimited)."""

    default: Rate | None = None
    overrides: tuple[tuple[str, Rate | None], ...] = ()

    def for_name(self, name: str) -> Rate | None:
        for candidate, rate in self.overrides:
            if candidate == name:
                return rate
        return self.default

    @property
    def active(self) -> bool:
        return self.default is not None or any(r is not None for _, r in self.overrides)


def parse_rate(text: str) -> Rate:
    match = _RATE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()!r} is not COUNT/UNIT[:BURST] (e.g. 100/s, 6000/m:500)")
    count = int(match.group(1))
    burst = int(match.group(3)) if match.group(3) else count
    if count <= 0 or count > 1_000_000:
        raise ValueError(f"{text.strip()!r}: COUNT must be 1..1000000")
    if burst <= 0 or burst > 1_000_000:
        raise ValueError(f"{text.strip()!r}: BURST must be 1..1000000")
    return Rate(count, _UNITS[match.group(2)], burst)


def parse_limits(spec: str, *, overrides_allowed: bool = True) -> RateLimits:
    """Parse a spec (module docstring); raises ``ValueError`` saying what is wrong."""
    default: Rate | None = None
    overrides: dict[str, Rate | None] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        if "=" not in item:
            if default is not None:
                raise ValueError("more than one default rate")
            default = parse_rate(item)
            continue
        if not overrides_allowed:
            raise ValueError("overrides (NAME=RATE) are not allowed here; give one RATE")
        name, _, value = item.partition("=")
        name = name.strip()
        if not _NAME.fullmatch(name):
            raise ValueError(f"bad name in {item[:80]!r}")
        if name in overrides:
            raise ValueError(f"{name!r} is given twice")
        value = value.strip()
        overrides[name] = None if value.lower() in ("off", "unlimited") else parse_rate(value)
    return RateLimits(default, tuple(overrides.items()))


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
