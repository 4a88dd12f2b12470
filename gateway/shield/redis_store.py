"""The Redis shield store: one store shared by every replica.

Every hot-path operation is one Lua script (``scripts.py``: what each does and the key
layout), so one round trip, atomic, and cluster-safe: every key a script touches shares
the hash tag of its shield digest. The scripts run on the seam's script client
(``gateway/wire/redis.py``, ``gateway/wire/resp.py``): pipelined, no pool checkout per call.

Failure is bounded, not retried: every call has the seam's deadline
(``GATEWAY_REDIS_TIMEOUT_MS``) and every error becomes
:class:`~gateway.shield.base.StoreUnavailable` (the seam's ``RedisUnavailable``).

One pub/sub subscription per process carries wake-ups and invalidations. It pings every
half second; when it is down (or silent), ``events_live`` is false and the shield stops
trusting its near-cache, which is cleared whenever the subscription is re-established.

``redis+cluster://`` (and ``rediss+cluster://``) select Redis Cluster; the uuid index
lives in another slot than the answer, so in a cluster it is written by a second command,
sent together with the store script (one round trip of waiting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from gateway.shield.base import (
    FOUND,
    HELD,
    LEASED,
    RELAY_TTL_MS,
    RELAYED,
    Lookup,
    StoreEvents,
)
from gateway.shield.entry import Entry
from gateway.shield.memory_store import wall_ms
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
from gateway.wire.answer import UpstreamAnswer
from gateway.wire.redis import FAILURES, RedisSeam, build_client
from gateway.wire.resp import Script

__all__ = ["RedisShieldStore", "build_client"]

log = logging.getLogger("gateway.shield")

HEARTBEAT_S = 0.5
RECONNECT_MAX_S = 1.0

# ``Metrics.observe_redis``: command name -> callback (outcome, seconds).
ObserverFactory = Callable[[str], Callable[[str, float], None]]
OPERATIONS = ("acquire", "store", "index", "release", "renew", "confirm")

_FAILURES = FAILURES

_ACQUIRE = Script(ACQUIRE)
_STORE = Script(STORE)
_RELEASE = Script(RELEASE)
_RENEW = Script(RENEW)
_CONFIRM = Script(CONFIRM)


class Orphan(msgspec.Struct, array_like=True, frozen=True):
    """A confirmation that found no uuid index: announced so repeats can apply it."""

    index: str
    uuid: str
    answer: UpstreamAnswer | None


_orphans = msgspec.msgpack.Encoder()
_orphans_decoder = msgspec.msgpack.Decoder(Orphan)


def _answer(status: bytes, content_type: bytes, body: bytes) -> UpstreamAnswer:
    return UpstreamAnswer(int(status), body, content_type.decode("latin-1"))


class RedisShieldStore:
    shared = True

    def __init__(
        self,
        seam: RedisSeam,
        *,
        observe: ObserverFactory | None = None,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self._seam = seam
        self._client = seam.client
        self._timeout_s = seam.timeout_s
        self._cluster = seam.cluster
        observers = {op: observe("shield_" + op) for op in OPERATIONS} if observe else {}
        self._observers: dict[str, Any] = {op: observers.get(op) for op in OPERATIONS}
        self._clock_ms = clock_ms
        self._wakeups = Wakeups()
        self._events: StoreEvents | None = None
        self._live = False
        self._listener: asyncio.Task[None] | None = None
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def events_live(self) -> bool:
        return self._live

    def set_events(self, events: StoreEvents) -> None:
        self._events = events

    def __len__(self) -> int:
        return 0

    async def start(self) -> None:
        """Best effort (a Redis down at start-up is the breaker's business): the seam
        learns a cluster's slot map, and the scripts are loaded so the first burst does
        not meet ``NOSCRIPT``."""
        self._closing = False
        await self._seam.start()
        await self._seam.load(_ACQUIRE, _STORE, _RELEASE, _RENEW)
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

    # -- operations --------------------------------------------------------------------

    async def acquire(
        self, digest: str, token: str, lease_ms: int, now_ms: int, holder: str = ""
    ) -> Lookup:
        reply = await self._seam.run(
            "acquire",
            _ACQUIRE,
            shield_keys(digest),
            (token, lease_ms, holder, now_ms, max(lease_ms * 2, 1000)),
            self._observers["acquire"],
        )
        kind = reply[0]
        if kind == FOUND:
            answer = _answer(reply[1], reply[2], reply[3])
            uuid = reply[5].decode("ascii", "replace") if len(reply) > 5 else ""
            return Lookup(FOUND, entry=Entry(answer, int(reply[4]), uuid))
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
        return bool(
            await self._seam.run(
                "renew", _RENEW, (lease,), (token, lease_ms), self._observers["renew"]
            )
        )

    def store(self, digest: str, token: str, entry: Entry, index: str) -> Awaitable[object]:
        """Queued on the connection by the call; awaiting gives the outcome (see base.py):
        1 when ``entry`` was written, 0 when an earlier answer was kept."""
        ttl_ms = max(entry.expires_ms - self._clock_ms(), 1)
        answer_key, lease, _, waiters = shield_keys(digest)
        keys = [answer_key, lease, waiters]
        if index and not self._cluster:
            keys.append(index_key(index))
        answer = entry.answer
        stored = self._seam.run(
            "store",
            _STORE,
            keys,
            (
                token,
                answer.status,
                answer.content_type,
                answer.body,
                entry.expires_ms,
                entry.uuid,
                ttl_ms,
                CHANNEL,
                b"w" + digest.encode("ascii"),
                digest,
            ),
            self._observers["store"],
        )
        if not (index and self._cluster):
            return stored
        # In a cluster the index lives in another slot: written alongside, not after.
        indexed = self._seam.call(
            "index", self._client.set(index_key(index), digest, px=ttl_ms), self._observers["index"]
        )
        return _outcomes(stored, indexed)

    async def release(self, digest: str, token: str, relayed: UpstreamAnswer | None) -> None:
        _, lease, relay, waiters = shield_keys(digest)
        if relayed is None:
            args: tuple[Any, ...] = (token, "0", "", "", "", RELAY_TTL_MS)
        else:
            args = (token, "1", relayed.status, relayed.content_type, relayed.body, RELAY_TTL_MS)
        await self._seam.run(
            "release",
            _RELEASE,
            (lease, relay, waiters),
            (*args, CHANNEL, b"w" + digest.encode("ascii")),
            self._observers["release"],
        )

    async def confirm(self, index: str, uuid: str, answer: UpstreamAnswer | None) -> str | None:
        observe = self._observers["confirm"]
        raw = await self._seam.call("confirm", self._client.get(index_key(index)), observe)
        if raw is None:
            # No index: nothing was stored, or Redis lost the index (eviction) while the
            # answer lives on. Tell every replica, so the next repeat that finds this
            # reservation rewrites it (StoreShield.orphaned).
            message = b"c" + _orphans.encode(Orphan(index, uuid.lower(), answer))
            await self._seam.call("confirm", self._client.publish(CHANNEL, message), observe)
            if self._events is not None:
                self._events.orphaned(index, uuid.lower(), answer)
            return None
        digest = raw.decode("ascii")
        return digest if await self.confirm_digest(digest, uuid, answer) else None

    async def confirm_digest(self, digest: str, uuid: str, answer: UpstreamAnswer | None) -> bool:
        """Rewrite (or drop) the answer under ``digest`` if it is reservation ``uuid``."""
        observe = self._observers["confirm"]
        if answer is None:
            args: tuple[Any, ...] = (uuid.lower(), "d", "", "", "")
        else:
            args = (uuid.lower(), "r", answer.status, answer.content_type, answer.body)
        changed = await self._seam.run(
            "confirm",
            _CONFIRM,
            (shield_keys(digest)[0],),
            (*args, CHANNEL, b"i" + digest.encode("ascii")),
            observe,
        )
        return bool(changed)

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
        elif kind == b"c" and self._events is not None:
            try:
                orphan = _orphans_decoder.decode(data[1:])
            except msgspec.DecodeError:
                return
            self._events.orphaned(orphan.index, orphan.uuid, orphan.answer)


async def _outcomes(*calls: Awaitable[Any]) -> Any:
    """The first call's reply, once all have answered; the first failure raised."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results[0]
