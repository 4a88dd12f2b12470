"""The one Redis seam: every Redis client of a process, its failures, and when to skip it.

One :class:`RedisSeam` per process (built by the app from ``GATEWAY_REDIS_URL``) holds:

- **one redis-py client** (one pool) for everything that is not the ping path's scripts:
  pub/sub announcements, rate-limit buckets, the lookup cache, the uuid index, the
  cluster slot map. Built by :func:`build_client` from every URL form the settings accept
  (``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``, ``rediss+cluster://``),
  with short socket, connect and pool-wait timeouts and redis-py's retries off (its
  defaults take ~60 s to give up on a blackholed Redis);
- **one script client** (``gateway/wire/resp.py``) for the shield's Lua scripts on the ping
  path: a pipelined connection per node, no pool checkout per call;
- **one breaker** (:class:`Breaker`): after repeated failures, whoever uses Redis (the
  shield, the rate limiter, the lookup cache) skips it for a moment rather than paying a
  timeout per request;
- **one error**: whatever fails (a refused or dropped connection, a timeout, an error
  reply, a bug of a client library under a failing network) is raised as
  :class:`RedisUnavailable`, naming the operation and the reason, never the secret URL.

Every call through the seam has an explicit deadline of ``GATEWAY_REDIS_TIMEOUT_MS``.

Library versions: ``redis.maint_notifications`` and the asyncio pool's
``maint_notifications_config`` exist from redis-py 8.1 (8.0 raises ``TypeError`` on
connect). ``tests/wire/test_redis.py`` covers 8.1.0 (floor, lock) to 8.2.0 (``.ci/latest``,
2026-12-04); pyproject.toml allows ``>=8.1,<8.3``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeout
from redis.maint_notifications import MaintNotificationsConfig

from gateway.wire.resp import Arg, LinkError, Script, ScriptClient, raising

log = logging.getLogger("gateway.wire.redis")

Observer = Callable[[str, float], None]

FAILURES = (RedisError, RedisClusterException, LinkError, OSError, TimeoutError)
"""What a Redis client raises when Redis (or the network to it) fails."""


class RedisUnavailable(Exception):
    """A Redis call failed or timed out (Redis down, slow, or refusing)."""

    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"redis {operation} failed: {reason}")
        self.operation = operation
        self.reason = reason


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].endswith("+cluster")


def build_client(url: str, *, timeout_s: float, max_connections: int) -> Redis | RedisCluster:
    """One pooled redis-py client with short timeouts and no retries."""
    common: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        "client_name": "rtb-gateway",
    }
    if is_cluster_url(url):
        scheme, rest = url.split("://", 1)
        return RedisCluster.from_url(
            scheme.removesuffix("+cluster") + "://" + rest,
            max_connections=max_connections,
            **common,
        )
    # No maintenance-notification handshake: one round trip less on every (re)connect,
    # and it only applies to managed Redis Enterprise endpoints.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
        **common,
    )
    return Redis(connection_pool=pool)


class Breaker:
    """When to stop asking Redis for a moment, and when to ask again.

    A blackholed Redis costs every call its full timeout; without a breaker every ping
    would pay that. After ``failures`` consecutive failed calls the breaker opens: Redis
    is skipped (the shield forwards unshielded, counted ``bypass``; rate limits hold per
    replica; lookups go upstream) for ``open_s``. Then one call is let through as a
    probe; success closes the breaker, failure opens it again. So Redis is used again at
    most ``open_s`` (plus one call) after it returns, and while it is away at most one
    request per ``open_s`` pays a timeout.

    Pure state with an injectable clock, so its timing is tested without sleeping.
    """

    def __init__(
        self,
        failures: int = 3,
        open_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = max(1, failures)
        self._open_s = open_s
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None
        self._probe_at: float | None = None

    @property
    def closed(self) -> bool:
        return self._open_until is None

    def allow(self) -> bool:
        """May this request use Redis? (Also hands out the probe when it is due.)"""
        open_until = self._open_until
        if open_until is None:
            return True
        now = self._clock()
        if now < open_until:
            return False
        # One probe at a time; a probe that never reported back (its request was
        # cancelled) is replaced after another open period.
        if self._probe_at is not None and now < self._probe_at + self._open_s:
            return False
        self._probe_at = now
        return True

    def success(self) -> None:
        if self._failures or self._open_until is not None:
            self._failures = 0
            self._open_until = None
            self._probe_at = None

    def failure(self) -> bool:
        """Record a failed call; ``True`` when this failure opened the breaker."""
        self._failures += 1
        was_closed = self._open_until is None
        if not was_closed or self._failures >= self._threshold:
            self._open_until = self._clock() + self._open_s
            self._probe_at = None
            return was_closed
        return False


class RedisSeam:
    """A process's Redis: one redis-py client, one script client, one breaker."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        max_connections: int,
        breaker: Breaker | None = None,
    ) -> None:
        self.cluster = is_cluster_url(url)
        self.timeout_s = timeout_s
        self.client = build_client(url, timeout_s=timeout_s, max_connections=max_connections)
        self.breaker = breaker or Breaker()
        self._scripts = ScriptClient(self.client, timeout_s=timeout_s)
        self._started = False

    async def start(self) -> None:
        """Best effort: a Redis that is down at start-up is the breaker's business, not a
        reason to refuse to serve. A cluster client learns the slot map before traffic
        arrives (redis-py replaces its startup node when it first does, closing
        connections that concurrent first commands are using)."""
        if self._started:
            return
        self._started = True
        if isinstance(self.client, RedisCluster):
            try:
                async with asyncio.timeout(max(self.timeout_s * 20, 1.0)):
                    await self.client.initialize()
            except Exception as exc:
                log.warning("redis cluster not reachable at start-up (%s)", type(exc).__name__)

    async def load(self, *scripts: Script) -> None:
        """Load the ping path's scripts now (best effort, like :meth:`start`)."""
        try:
            async with asyncio.timeout(max(self.timeout_s * 20, 1.0)):
                await self._scripts.load(*scripts)
        except Exception as exc:
            log.warning("redis scripts not loaded at start-up (%s)", type(exc).__name__)

    async def close(self) -> None:
        await self._scripts.close()
        with contextlib.suppress(*FAILURES):
            await self.client.aclose()
            if isinstance(self.client, Redis):  # a pool handed to Redis() is not closed with it
                await self.client.connection_pool.disconnect()

    def run(
        self,
        operation: str,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Arg],
        observe: Observer | None = None,
    ) -> Coroutine[Any, Any, Any]:
        """One Lua script on the ping path's client (its deadline is the client's).

        Queued by the call, the reply awaited (``ScriptClient.run`` says why).
        """
        started = time.perf_counter()
        try:
            reply = self._scripts.run(script, keys, args)
        except Exception as exc:
            return raising(self._failed(operation, exc, started, observe))
        return self._replied(operation, reply, started, observe)

    async def _replied(
        self, operation: str, reply: Awaitable[Any], started: float, observe: Observer | None
    ) -> Any:
        try:
            value = await reply
        except Exception as exc:
            raise self._failed(operation, exc, started, observe) from None
        if observe is not None:
            observe("ok", time.perf_counter() - started)
        return value

    async def call(
        self,
        operation: str,
        call: Awaitable[Any],
        observe: Observer | None = None,
        *,
        timeout_s: float | None = None,
    ) -> Any:
        """One redis-py command or script, with the seam's deadline (or ``timeout_s``)
        and error."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s or self.timeout_s):
                reply = await call
        except Exception as exc:
            raise self._failed(operation, exc, started, observe) from None
        if observe is not None:
            observe("ok", time.perf_counter() - started)
        return reply

    def _failed(
        self, operation: str, exc: Exception, started: float, observe: Observer | None
    ) -> RedisUnavailable:
        # Anything a client raises, including its own bugs under a failing network,
        # means "no answer from Redis": callers fail open either way.
        if not isinstance(exc, FAILURES):
            log.warning("unexpected redis error on %s: %r", operation, exc)
        if observe is not None:
            outcome = "timeout" if isinstance(exc, TimeoutError | RedisTimeout) else "error"
            observe(outcome, time.perf_counter() - started)
        return RedisUnavailable(operation, type(exc).__name__)
