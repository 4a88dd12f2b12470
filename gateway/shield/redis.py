"""The Redis shield store: one store shared by every replica.

Every hot-path operation is one Lua script (``scripts.py``: what each does and the key
layout), so one round trip, atomic, and cluster-safe: every key a script touches shares
the hash tag of its shield digest.

Failure is bounded, not retried: the socket, connect and pool-wait timeouts are all
``GATEWAY_REDIS_TIMEOUT_MS`` and redis-py's own retries are off (its defaults take ~60 s
to give up on a blackholed Redis). Every error becomes
:class:`~gateway.shield.base.StoreUnavailable`.

One pub/sub subscription per process carries wake-ups and invalidations. It pings every
half second; when it is down (or silent), ``events_live`` is false and the shield stops
trusting its near-cache, which is cleared whenever the subscription is re-established.

``redis+cluster://`` (and ``rediss+cluster://``) select Redis Cluster; the uuid index
lives in another slot than the answer, so in a cluster it is written by a second command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeout
from redis.maint_notifications import MaintNotificationsConfig

from gateway.shield.base import (
    FOUND,
    HELD,
    LEASED,
    RELAY_TTL_MS,
    RELAYED,
    Lookup,
    StoreEvents,
    StoreUnavailable,
)
from gateway.shield.entry import Entry
from gateway.shield.memory import wall_ms
from gateway.shield.scripts import (
    ACQUIRE,
    CHANNEL,
    CONFIRM,
    RELEASE,
    RENEW,
    STORE,
    index_key,
    shield_keys,
)
from gateway.shield.waiting import Wakeups, wait_settled
from gateway.upstream.answer import UpstreamAnswer

log = logging.getLogger("gateway.shield")

HEARTBEAT_S = 0.5
RECONNECT_MAX_S = 1.0

# ``Metrics.observe_redis``: command name -> callback (outcome, seconds).
ObserverFactory = Callable[[str], Callable[[str, float], None]]
OPERATIONS = ("acquire", "store", "index", "release", "renew", "confirm")

_FAILURES = (RedisError, RedisClusterException, OSError, TimeoutError)


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].endswith("+cluster")


def build_client(url: str, *, timeout_s: float, max_connections: int) -> Redis | RedisCluster:
    """One pooled client with short timeouts and no retries, from ``GATEWAY_REDIS_URL``."""
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


def _answer(status: bytes, content_type: bytes, body: bytes) -> UpstreamAnswer:
    return UpstreamAnswer(int(status), body, content_type.decode("latin-1"))


class RedisShieldStore:
    shared = True

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        timeout_s: float = 0.05,
        cluster: bool = False,
        observe: ObserverFactory | None = None,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._cluster = cluster
        self._observers = (
            {op: observe("shield_" + op) for op in OPERATIONS} if observe is not None else None
        )
        self._clock_ms = clock_ms
        self._acquire = client.register_script(ACQUIRE)
        self._store = client.register_script(STORE)
        self._release = client.register_script(RELEASE)
        self._renew = client.register_script(RENEW)
        self._confirm = client.register_script(CONFIRM)
        self._wakeups = Wakeups()
        self._events: StoreEvents | None = None
        self._live = False
        self._listener: asyncio.Task[None] | None = None
        self._closing = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout_s: float,
        max_connections: int,
        observe: ObserverFactory | None = None,
    ) -> RedisShieldStore:
        client = build_client(url, timeout_s=timeout_s, max_connections=max_connections)
        return cls(client, timeout_s=timeout_s, cluster=is_cluster_url(url), observe=observe)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def events_live(self) -> bool:
        return self._live

    def set_events(self, events: StoreEvents) -> None:
        self._events = events

    def __len__(self) -> int:
        return 0

    async def start(self) -> None:
        """Best effort: a Redis that is down at start-up is the breaker's business, not a
        reason to refuse to serve. A cluster client learns the slot map before traffic
        arrives (redis-py replaces its startup node when it first does, closing
        connections that concurrent first commands are using), and the scripts are
        loaded so the first burst does not meet ``NOSCRIPT``."""
        self._closing = False
        try:
            async with asyncio.timeout(max(self._timeout_s * 20, 1.0)):
                if isinstance(self._client, RedisCluster):
                    await self._client.initialize()
                for script in (self._acquire, self._store, self._release, self._renew):
                    await self._client.script_load(script.script)
        except Exception as exc:
            log.warning("shield store not reachable at start-up (%s)", type(exc).__name__)
        self._listener = asyncio.create_task(self._listen(), name="shield-events")

    async def close(self) -> None:
        self._closing = True
        listener, self._listener = self._listener, None
        if listener is not None:
            # redis-py's get_message(timeout=...) turns a cancellation that lands on its
            # read timeout into "no message" and carries on; the listener also checks
            # ``_closing`` every heartbeat, and we cancel again until it is gone.
            for _ in range(20):
                listener.cancel()
                done, _ = await asyncio.wait({listener}, timeout=0.1)
                if done:
                    break
        self._wakeups.wake_all()
        with contextlib.suppress(*_FAILURES):
            if isinstance(self._client, RedisCluster):
                await self._client.aclose()
            else:
                await self._client.aclose()
                await self._client.connection_pool.disconnect()

    # -- operations --------------------------------------------------------------------

    async def _call(self, operation: str, call: Awaitable[Any]) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await call
            outcome = "ok"
            return result
        except Exception as exc:
            # Anything the client raises, including its own bugs under a failing network,
            # means "no answer from the store": the shield fails open either way.
            if isinstance(exc, TimeoutError | RedisTimeout):
                outcome = "timeout"
            elif not isinstance(exc, _FAILURES):
                log.warning("unexpected shield store error on %s: %r", operation, exc)
            raise StoreUnavailable(operation, type(exc).__name__) from None
        finally:
            if self._observers is not None:
                self._observers[operation](outcome, time.perf_counter() - started)

    async def acquire(
        self, digest: str, token: str, lease_ms: int, now_ms: int, holder: str = ""
    ) -> Lookup:
        reply = await self._call(
            "acquire",
            self._acquire(
                keys=shield_keys(digest),
                args=(token, lease_ms, holder, now_ms, max(lease_ms * 2, 1000)),
            ),
        )
        kind = reply[0]
        if kind == FOUND:
            answer = _answer(reply[1], reply[2], reply[3])
            return Lookup(FOUND, entry=Entry(answer, int(reply[4]), ""))
        if kind == LEASED:
            return Lookup(LEASED)
        if kind == HELD:
            return Lookup(HELD, holder=reply[1].decode("ascii"))
        return Lookup(RELAYED, relayed=_answer(reply[1], reply[2], reply[3]))

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
        lease = shield_keys(digest)[1]
        return bool(await self._call("renew", self._renew(keys=(lease,), args=(token, lease_ms))))

    async def store(self, digest: str, token: str, entry: Entry, index: str) -> None:
        ttl_ms = entry.expires_ms - self._clock_ms()
        answer_key, lease, _, waiters = shield_keys(digest)
        keys = [answer_key, lease, waiters]
        if index and not self._cluster:
            keys.append(index_key(index))
        answer = entry.answer
        await self._call(
            "store",
            self._store(
                keys=keys,
                args=(
                    token,
                    answer.status,
                    answer.content_type,
                    answer.body,
                    entry.expires_ms,
                    entry.uuid,
                    max(ttl_ms, 1),
                    CHANNEL,
                    b"w" + digest.encode("ascii"),
                    digest,
                ),
            ),
        )
        if index and self._cluster:
            await self._call("index", self._client.set(index_key(index), digest, px=max(ttl_ms, 1)))

    async def release(self, digest: str, token: str, relayed: UpstreamAnswer | None) -> None:
        _, lease, relay, waiters = shield_keys(digest)
        if relayed is None:
            args: tuple[Any, ...] = (token, "0", "", "", "", RELAY_TTL_MS)
        else:
            args = (token, "1", relayed.status, relayed.content_type, relayed.body, RELAY_TTL_MS)
        await self._call(
            "release",
            self._release(
                keys=(lease, relay, waiters),
                args=(*args, CHANNEL, b"w" + digest.encode("ascii")),
            ),
        )

    async def confirm(self, index: str, uuid: str, answer: UpstreamAnswer | None) -> str | None:
        raw = await self._call("confirm", self._client.get(index_key(index)))
        if raw is None:
            return None
        digest = raw.decode("ascii")
        if answer is None:
            args: tuple[Any, ...] = (uuid.lower(), "d", "", "", "")
        else:
            args = (uuid.lower(), "r", answer.status, answer.content_type, answer.body)
        changed = await self._call(
            "confirm",
            self._confirm(
                keys=(shield_keys(digest)[0],),
                args=(*args, CHANNEL, b"i" + digest.encode("ascii")),
            ),
        )
        return digest if changed else None

    # -- announcements -----------------------------------------------------------------

    async def _listen(self) -> None:
        """Keep one subscription alive; reconnect with backoff; ping to detect silence."""
        backoff = 0.05
        while not self._closing:
            pubsub = self._client.pubsub()
            try:
                async with asyncio.timeout(max(self._timeout_s * 4, 0.5)):
                    await pubsub.subscribe(CHANNEL)
                    while not self._closing:
                        first = await pubsub.get_message(timeout=self._timeout_s * 4)
                        if first is not None and first.get("type") == "subscribe":
                            self._set_live(True)
                            break
                backoff = 0.05
                awaiting_pong = False
                while not self._closing:
                    message = await pubsub.get_message(timeout=HEARTBEAT_S)
                    if message is None:
                        if awaiting_pong:
                            raise TimeoutError("no pong")
                        await pubsub.ping()
                        awaiting_pong = True
                        continue
                    awaiting_pong = False
                    if message.get("type") == "message":
                        self._dispatch(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Whatever it was, the answer is the same: drop the subscription and make
                # a new one (the near-cache stays off meanwhile).
                level = logging.DEBUG if isinstance(exc, _FAILURES) else logging.WARNING
                log.log(level, "shield events: %r", exc)
            finally:
                self._set_live(False)
                with contextlib.suppress(*_FAILURES, asyncio.CancelledError):
                    async with asyncio.timeout(self._timeout_s * 4):
                        await pubsub.aclose()
            if self._closing:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_S)

    def _set_live(self, live: bool) -> None:
        if live == self._live:
            return
        self._live = live
        # Either way announcements may have been missed: near-cached answers can no
        # longer be trusted, and waiters should look again instead of sleeping.
        if self._events is not None:
            self._events.reset()
        self._wakeups.wake_all()
        if live:
            log.info("shield events subscribed")
        elif not self._closing:
            log.warning("shield events lost: near-cache off until Redis answers again")

    def _dispatch(self, data: object) -> None:
        if not isinstance(data, bytes) or len(data) < 2:
            return
        kind, digest = data[:1], data[1:].decode("ascii", "replace")
        if kind == b"w":
            self._wakeups.wake(digest)
        elif kind == b"i" and self._events is not None:
            self._events.invalidate(digest)
