"""StoreShield: the ping shield, over any :class:`~gateway.shield.base.ShieldStore`.

How one ping is answered (and counted in ``gateway_shield_lookups_total``)::

    near-cache hit (Redis store, events live) ─────────────────────▶ hit
    same caller already in flight in this process ─▶ await it ─────▶ coalesced (hit if it was one)
    store skipped after repeated failures ─▶ forward unshielded ────▶ bypass
    acquire:  stored answer ───────────────────────────────────────▶ hit
              store failed ─▶ forward unshielded ──────────────────▶ error
              lease granted ─▶ forward, store or relay, release ───▶ miss
              lease held elsewhere ─▶ wait (bounded by own deadline)
                   answer stored / failure relayed ────────────────▶ coalesced
                   lease lapsed (holder died) ─▶ this waiter holds ─▶ miss
                   deadline reached ─▶ 504 ────────────────────────▶ coalesced

Decisions the contract left open:

- **Waiters of a failed lease get the holder's answer.** When the leaseholder's forward
  fails (502/504), or the upstream answers something not fit to store (an error status,
  ``no-target``, an expired reservation), every request that was waiting for it gets
  that same answer (status and body, without ``retreaver_ping_shield``), relayed through
  the store; nothing is stored, so the *next* ping asks the upstream again. Waiters are
  duplicates that asked at the same instant; retrying each of them as leaseholder in
  turn would send the upstream a serial train of retries exactly when it is failing.
  Only a leaseholder that *vanished* (process killed, task cancelled) is replaced: its
  lease lapses and one waiter takes over.
- **Leases are short and renewed.** A lease lives ``GATEWAY_SHIELD_LEASE_MS`` (1 s) and
  the holder renews it every third of that while its forward runs, never past its
  deadline plus a 250 ms margin. A lease as long as the whole RTB deadline would outlive
  every waiter of a dead holder; a renewed short one lets a waiter take over within
  ~1.2 s of the holder's death, with most of its own budget left.
- **In-process single-flight first.** Concurrent pings for one caller in one process
  share one store conversation (one acquire, one waiter, one forward); the others await
  it. This keeps Redis traffic per caller constant however many duplicates arrive, and
  keeps duplicates coalesced inside a replica even while Redis is down.
- **Near-cache only while announcements flow, and only briefly.** Repeats are answered
  from process memory only while the store's pub/sub subscription is up and the breaker
  is closed (otherwise a confirmation on another replica could go unnoticed), and each
  copy only for ``GATEWAY_SHIELD_NEAR_CACHE_TTL_MS`` after Redis last showed it (Redis
  can lose an answer without a word: ``FLUSHALL``, eviction). A leaseholder near-caches
  its own answer only once Redis reports that answer was the one stored: when Redis
  lost the lease mid-forward and another replica stored first, this replica's next
  repeat reads the stored one instead of keeping its own.
- **A confirmation whose uuid index Redis lost still reaches the repeats.** The index
  (uuid -> shield digest) is a key of its own, colder than the answer it points at, so
  an ``allkeys-lru`` Redis evicts it first. A confirmation that finds no index is
  announced to every replica (``StoreEvents.orphaned``); each keeps it (bounded by
  ``ORPHANS_MAX``, until ``GATEWAY_SHIELD_MAX_TTL_S``), and the first repeat that meets
  that reservation, in Redis or in the near-cache, rewrites (or drops) it in Redis as
  the confirmation would have, then answers from the rewritten copy. Costs the hot
  path one check of an almost always empty dict.
- **A lookup that failed may still have leased.** A lookup that timed out may have
  reached Redis and been granted there, to a token this request holds (it forwards
  unshielded meanwhile). So once its answer is known the request still stores it, or
  releases, under that token, in the background: the caller's next ping finds the
  answer (or no lease) instead of waiting out a lease nobody holds and forwarding again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import msgspec

from gateway.errors import GatewayError, UpstreamTimeout
from gateway.observe.metrics import Metrics
from gateway.observe.results import BYPASS, COALESCED, ERROR, HIT, MISS, RESULTS
from gateway.ping.requests import Ping
from gateway.shield.base import (
    FOUND,
    LEASED,
    RELAYED,
    Forward,
    Lookup,
    ShieldStore,
    StoreUnavailable,
    marked,
)
from gateway.shield.entry import Entry, confirmed_answer, make_entry
from gateway.shield.keys import index_digest, ping_digest
from gateway.shield.memory_store import wall_ms
from gateway.shield.nearcache import NearCache
from gateway.wire.answer import UpstreamAnswer
from gateway.wire.redis import Breaker

log = logging.getLogger("gateway.shield")

LEASE_MARGIN_MS = 250
# Confirmations kept for repeats because their uuid index was gone (see the docstring).
ORPHANS_MAX = 10_000


class _Settled(msgspec.Struct, frozen=True):
    """How a lead request ended: its own answer (or error) and what its followers get.

    ``repeat`` is ``None`` when the leader gave up without an answer (it was waiting and
    its own deadline came first): followers then try again themselves. One per lead
    request, so a struct: a frozen dataclass's ``__init__`` costs ten times as much.
    """

    first: UpstreamAnswer | None
    error: GatewayError | None
    repeat: UpstreamAnswer | None
    result: str


def _relayable(exc: GatewayError) -> UpstreamAnswer:
    return UpstreamAnswer(exc.status, exc.body(), "application/json")


class StoreShield:
    def __init__(
        self,
        store: ShieldStore,
        *,
        scope: str = "key",
        max_ttl_s: float = 3600,
        lease_ms: int = 1000,
        near_cache_size: int = 0,
        near_cache_ttl_ms: int = 1000,
        breaker: Breaker | None = None,
        metrics: Metrics | None = None,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self._store = store
        self._scope = scope
        self._max_ttl_s = max_ttl_s
        self._lease_ms = lease_ms
        self._clock_ms = clock_ms
        self._breaker = breaker or Breaker()
        self._near = (
            NearCache(near_cache_size, near_cache_ttl_ms)
            if store.shared and near_cache_size > 0
            else None
        )
        # An in-process store answers a hit synchronously: no flight, token or lease.
        self._peek = getattr(store, "peek", None) if not store.shared else None
        self._flights: dict[str, asyncio.Future[_Settled | None]] = {}
        self._last: tuple[Ping | None, str] = (None, "")
        # Lease tokens: unique per replica by a random prefix, then a counter; an
        # os.urandom call per ping (secrets.token_hex) showed in the hit path's profile.
        prefix, counter = os.urandom(6).hex(), itertools.count(1)
        self._tokens = lambda: f"{prefix}{next(counter):x}"
        self._background: set[asyncio.Task[Any]] = set()
        # (uuid, index digest) -> (replacement or None to drop, kept until epoch ms), and
        # how many of them name each uuid: a hit checks the uuid alone (no hashing), and
        # a confirmation under another RTB key cannot shadow the real one.
        self._orphans: OrderedDict[tuple[str, str], tuple[UpstreamAnswer | None, int]] = (
            OrderedDict()
        )
        self._orphan_uuids: dict[str, int] = {}
        self._orphans_dropped = metrics.shield_orphans_dropped.inc if metrics else None
        self._counters = (
            {r: metrics.bind(metrics.shield_lookups, r) for r in RESULTS} if metrics else None
        )
        if metrics is not None:
            # In process: the store's answers; over Redis: the near-cache's.
            near = self._near
            metrics.track_shield_store_size(
                (lambda: len(near)) if near is not None else (lambda: len(store))
            )
        store.set_events(self)

    # -- Shield --------------------------------------------------------------------------

    async def start(self) -> None:
        await self._store.start()

    async def close(self) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=1.0)
        await self._store.close()

    def answer_now(self, ping: Ping, digest: str | None = None) -> UpstreamAnswer | None:
        """The stored answer when it can be had without waiting (a hit, counted), else None.

        Only process memory is asked: the near-cache in front of Redis (while its
        announcements flow) or the in-process store. :meth:`answer` starts with it, and
        the wire layer calls it alone to answer a repeat without the ASGI machinery
        (gateway/ping/hit_lane.py)."""
        if digest is None:
            digest = ping_digest(self._scope, ping)
            # A miss asked here first (by the wire layer) is answered next by
            # :meth:`answer` for the same Ping object: its digest is not hashed twice.
            self._last = (ping, digest)
        near = self._near
        if near is not None and self._store.events_live and self._breaker.closed:
            entry = near.get(digest, self._clock_ms())
            if entry is not None and not (self._orphan_uuids and entry.uuid in self._orphan_uuids):
                self._count(HIT)
                return entry.answer
        peek = self._peek
        if peek is not None and digest not in self._flights:
            entry = peek(digest, self._clock_ms())
            if entry is not None:
                self._count(HIT)
                return entry.answer
        return None

    async def answer(
        self, ping: Ping, deadline: float, forward: Forward
    ) -> tuple[UpstreamAnswer, str]:
        last, digest = self._last
        if last is not ping:
            digest = ping_digest(self._scope, ping)
        stored = self.answer_now(ping, digest)
        if stored is not None:
            return stored, HIT
        loop = asyncio.get_running_loop()
        while True:
            flight = self._flights.get(digest)
            if flight is None:
                return await self._lead(ping, digest, deadline, forward)
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    settled = await asyncio.shield(flight)
            except TimeoutError:
                self._count(COALESCED)
                raise marked(UpstreamTimeout("rtb"), COALESCED) from None
            if settled is None or settled.repeat is None:
                continue  # the leader gave up without an answer: look again
            result = HIT if settled.result == HIT else COALESCED
            self._count(result)
            return settled.repeat, result

    async def confirmed(self, rtb_key: str, uuid: str, answer: UpstreamAnswer) -> None:
        replacement = confirmed_answer(answer)
        try:
            digest = await self._store.confirm(index_digest(rtb_key, uuid), uuid, replacement)
        except StoreUnavailable as exc:
            self._failed(exc)
            log.warning("confirmation not reflected in the shield store (%s)", exc.reason)
            return
        self._ok()
        if digest is not None and self._near is not None:
            self._near.invalidate(digest)

    # -- StoreEvents ---------------------------------------------------------------------

    def invalidate(self, digest: str) -> None:
        if self._near is not None:
            self._near.invalidate(digest)

    def reset(self) -> None:
        if self._near is not None:
            self._near.clear()

    def orphaned(self, index: str, uuid: str, answer: UpstreamAnswer | None) -> None:
        orphans = self._orphans
        now = self._clock_ms()
        while orphans and next(iter(orphans.values()))[1] <= now:
            self._forget(next(iter(orphans)))
        key = (uuid, index)
        if key in orphans:
            del orphans[key]
        else:
            self._orphan_uuids[uuid] = self._orphan_uuids.get(uuid, 0) + 1
        orphans[key] = (answer, now + int(self._max_ttl_s * 1000))
        if len(orphans) > ORPHANS_MAX:
            self._forget(next(iter(orphans)))
            if self._orphans_dropped is not None:
                self._orphans_dropped()

    def _forget(self, key: tuple[str, str]) -> None:
        del self._orphans[key]
        uuid = key[0]
        left = self._orphan_uuids[uuid] - 1
        if left:
            self._orphan_uuids[uuid] = left
        else:
            del self._orphan_uuids[uuid]

    # -- one lead request ----------------------------------------------------------------

    async def _lead(
        self, ping: Ping, digest: str, deadline: float, forward: Forward
    ) -> tuple[UpstreamAnswer, str]:
        flight: asyncio.Future[_Settled | None] = asyncio.get_running_loop().create_future()
        self._flights[digest] = flight
        settled: _Settled | None = None
        try:
            settled = await self._resolve(ping, digest, deadline, forward)
        finally:
            del self._flights[digest]
            flight.set_result(settled)
        self._count(settled.result)
        if settled.error is not None:
            raise marked(settled.error, settled.result) from None
        assert settled.first is not None
        return settled.first, settled.result

    async def _resolve(
        self, ping: Ping, digest: str, deadline: float, forward: Forward
    ) -> _Settled:
        if not self._breaker.allow():
            return await self._unshielded(forward, BYPASS)
        store = self._store
        token = self._tokens()
        lease_ms = self._lease_for(deadline)
        generation = self._near.generation if self._near is not None else 0
        try:
            look = await store.acquire(digest, token, lease_ms, self._clock_ms())
            self._ok()
            if look.kind == FOUND and self._orphan_uuids:
                look = await self._healed(ping, digest, token, lease_ms, look)
            if look.kind == FOUND:
                assert look.entry is not None
                return self._found(digest, look.entry, generation, HIT)
            if look.kind != LEASED:
                look = await store.wait(
                    digest, look.holder, token, lease_ms, deadline, self._clock_ms
                )
                self._ok()
        except StoreUnavailable as exc:
            self._failed(exc)
            # The failed call may have leased to ``token`` all the same: settle it.
            return await self._unshielded(forward, ERROR, (ping, digest, token))
        except TimeoutError:
            return _Settled(None, UpstreamTimeout("rtb"), None, COALESCED)
        if look.kind == FOUND:
            assert look.entry is not None
            return self._found(digest, look.entry, generation, COALESCED)
        if look.kind == RELAYED:
            assert look.relayed is not None
            return _Settled(look.relayed, None, look.relayed, COALESCED)
        return await self._hold(ping, digest, token, deadline, forward)

    async def _healed(
        self, ping: Ping, digest: str, token: str, lease_ms: int, look: Lookup
    ) -> Lookup:
        """``look`` (FOUND), after applying a confirmation that missed it, if one did."""
        entry = look.entry
        assert entry is not None
        if entry.uuid not in self._orphan_uuids:
            return look
        # The index digest binds the RTB key: a confirmation under another key is not
        # this caller's and changes nothing.
        key = (entry.uuid, index_digest(ping.key, entry.uuid))
        orphan = self._orphans.get(key)
        if orphan is None or orphan[1] <= self._clock_ms():
            return look
        replacement = orphan[0]
        await self._store.confirm_digest(digest, entry.uuid, replacement)
        self._forget(key)
        if self._near is not None:
            self._near.invalidate(digest)
        if replacement is not None:
            return Lookup(FOUND, entry=Entry(replacement, entry.expires_ms, entry.uuid))
        # Dropped (no-target): the caller's ping is forwarded again, as after a confirm.
        return await self._store.acquire(digest, token, lease_ms, self._clock_ms())

    def _found(self, digest: str, entry: Entry, generation: int, result: str) -> _Settled:
        if self._near is not None:
            self._near.put(digest, entry, generation, self._clock_ms())
        return _Settled(entry.answer, None, entry.answer, result)

    async def _hold(
        self, ping: Ping, digest: str, token: str, deadline: float, forward: Forward
    ) -> _Settled:
        """Forward as leaseholder; store the answer or relay it; always release."""
        store = self._store
        # Only a shared store's lease can outlive its holder (another replica may die);
        # in process the lease covers the whole deadline and needs no renewing task.
        keeper = _LeaseKeeper(self, digest, token, deadline) if store.shared else None
        try:
            answer = await forward()
        except GatewayError as exc:
            relayed = _relayable(exc)
            await self._quietly(store.release(digest, token, relayed))
            return _Settled(None, exc, relayed, MISS)
        except BaseException:
            # Cancelled mid-forward: free the lease at once (in the background, since
            # this task may not await any more) so a waiter can take over.
            self._spawn(self._quietly(store.release(digest, token, None)))
            raise
        finally:
            if keeper is not None:
                keeper.stop()
        entry = make_entry(answer, self._clock_ms() / 1000, self._max_ttl_s)
        if entry is None:
            await self._quietly(store.release(digest, token, answer))
            return _Settled(answer, None, answer, MISS)
        index = index_digest(ping.key, entry.uuid) if entry.uuid else ""
        generation = self._near.generation if self._near is not None else 0
        stored = store.store(digest, token, entry, index)
        if store.shared:
            # Queued ahead of the answer (ShieldStore.store): a repeat sent once the client
            # has the answer reaches Redis after it, so the answer does not wait for the
            # reply, one loopback round trip less on every first ping.
            self._spawn(self._stored(stored, digest, entry, generation))
        else:
            await self._quietly(stored)
        return _Settled(answer, None, entry.answer, MISS)

    async def _stored(
        self, stored: Awaitable[object], digest: str, entry: Entry, generation: int
    ) -> None:
        """Near-cache ``entry`` once Redis says it is the answer it keeps: after Redis
        lost this lease mid-forward another replica may have stored first, and a copy of
        the answer Redis did not keep would make this replica disagree with the rest."""
        try:
            written = await stored
        except StoreUnavailable as exc:
            self._failed(exc)
            return
        self._ok()
        if written and self._near is not None:
            self._near.put(digest, entry, generation, self._clock_ms())

    async def _unshielded(
        self, forward: Forward, result: str, leased: tuple[Ping, str, str] | None = None
    ) -> _Settled:
        try:
            answer = await forward()
        except GatewayError as exc:
            if leased is not None:
                self._spawn(self._settle_lease(leased, None))
            return _Settled(None, exc, _relayable(exc), result)
        entry = make_entry(answer, self._clock_ms() / 1000, self._max_ttl_s)
        if leased is not None:
            self._spawn(self._settle_lease(leased, entry))
        return _Settled(answer, None, entry.answer if entry else answer, result)

    async def _settle_lease(self, leased: tuple[Ping, str, str], entry: Entry | None) -> None:
        """After a failed lookup: store ``entry`` (or release) under the request's token.

        Both are compare-and-delete on the token, so harmless when the lookup never
        reached Redis. Store keeps the first answer written, so if another replica leased
        and stored meanwhile its answer stays. Failures here are expected (Redis was just
        failing) and do not feed the breaker: the failed lookup already did.
        """
        ping, digest, token = leased
        store = self._store
        try:
            if entry is None:
                await store.release(digest, token, None)
            else:
                index = index_digest(ping.key, entry.uuid) if entry.uuid else ""
                await store.store(digest, token, entry, index)
        except StoreUnavailable as exc:
            log.debug("lease of a failed lookup not settled (%s)", exc.reason)

    def _lease_for(self, deadline: float) -> int:
        remaining_ms = (deadline - asyncio.get_running_loop().time()) * 1000
        if not self._store.shared:
            return int(max(1, remaining_ms + LEASE_MARGIN_MS))
        return int(max(1, min(self._lease_ms, remaining_ms + LEASE_MARGIN_MS)))

    # -- bookkeeping -----------------------------------------------------------------------

    def _count(self, result: str) -> None:
        if self._counters is not None:
            self._counters[result].inc()

    def _ok(self) -> None:
        if not self._breaker.closed:
            log.info("shield store answering again: shield resumed")
        self._breaker.success()

    def _failed(self, exc: StoreUnavailable) -> None:
        if self._breaker.failure():
            log.warning(
                "shield store failing (%s on %s): forwarding pings unshielded for a moment",
                exc.reason,
                exc.operation,
            )

    async def _quietly(self, call: Awaitable[object]) -> None:
        """Store writes after the answer is known: failures only feed the breaker."""
        try:
            await call
        except StoreUnavailable as exc:
            self._failed(exc)
        else:
            self._ok()

    def _spawn(self, call: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(call)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class _LeaseKeeper:
    """Renews a leaseholder's lease every third of its life while its forward runs.

    A timer rather than a task: most forwards end long before the first renewal is due,
    and a task started and cancelled per forwarded ping was a visible share of the Redis
    forward path's profile. A renewal that fails feeds the breaker and the next one is
    still tried; one that finds the lease gone (taken over) stops.
    """

    __slots__ = ("_deadline", "_digest", "_handle", "_shield", "_stopped", "_task", "_token")

    def __init__(self, shield: StoreShield, digest: str, token: str, deadline: float) -> None:
        self._shield = shield
        self._digest = digest
        self._token = token
        self._deadline = deadline
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._handle: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self._shield._lease_ms / 3000, self._due)

    def _due(self) -> None:
        self._handle = None
        if not self._stopped:
            self._task = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        shield = self._shield
        lease_ms = shield._lease_for(self._deadline)
        if lease_ms <= 1:
            return
        try:
            if not await shield._store.renew(self._digest, self._token, lease_ms):
                return
            shield._ok()
        except StoreUnavailable as exc:
            shield._failed(exc)
        if not self._stopped:
            self._arm()

    def stop(self) -> None:
        self._stopped = True
        if self._handle is not None:
            self._handle.cancel()
        if self._task is not None:
            self._task.cancel()
