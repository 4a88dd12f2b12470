"""The seam between the RTB endpoint and the ping shield.

The endpoint hands the shield a validated ping, its deadline and a ``forward`` callable;
the shield decides whether to answer from its store (hit), wait for another request
already forwarding the same caller (coalesced), forward and store (miss), or forward
without the store because the store is failing (error/bypass). The endpoint never sees
keys, leases or Redis.

Below the shield sits a :class:`ShieldStore`: the few atomic operations the shield's
single-flight needs, implemented twice with the same semantics (``memory.py`` for one
process, ``redis.py`` for replicas sharing Redis). A store call either does what it
says or raises :class:`StoreUnavailable`; the shield, not the store, decides to fail
open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from gateway.errors import GatewayError
from gateway.observe.results import BYPASS, COALESCED, ERROR, HIT, MISS, NONE
from gateway.ping.requests import Ping
from gateway.shield.entry import Entry
from gateway.wire.answer import UpstreamAnswer
from gateway.wire.redis import RedisUnavailable

Forward = Callable[[], Awaitable[UpstreamAnswer]]


# ``X-Shield`` for each result. The metric tells a failed store call (error) from a
# skipped one (bypass); a publisher only needs to know the shield was not used.
X_SHIELD = {
    HIT: "hit",
    MISS: "miss",
    COALESCED: "coalesced",
    ERROR: "bypass",
    BYPASS: "bypass",
    NONE: "none",
}


def marked(exc: GatewayError, result: str) -> GatewayError:
    """A new error answer like ``exc`` that also carries the ping's ``X-Shield`` header."""
    return exc.with_headers({"x-shield": X_SHIELD[result]})


class Shield(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def answer(
        self, ping: Ping, deadline: float, forward: Forward
    ) -> tuple[UpstreamAnswer, str]:
        """The answer for ``ping`` and how it was obtained (hit, miss, coalesced, ...)."""
        ...

    async def confirmed(self, rtb_key: str, uuid: str, answer: UpstreamAnswer) -> None:
        """A reservation was confirmed through the gateway: update any stored copy."""
        ...


# -- the store seam ----------------------------------------------------------------------

# What a lookup found.
FOUND = 1  # a stored answer (``entry``)
LEASED = 2  # nothing stored and no one forwarding: the caller now holds the lease
HELD = 3  # someone else (``holder``) holds the lease: wait for them
RELAYED = 4  # the holder we waited for gave up with an answer not fit to store

# How long a relayed answer stays readable for the waiters of its lease: long enough for
# the slowest poll to see it, short enough to stay a small, self-cleaning key.
RELAY_TTL_MS = 5000


class Lookup(msgspec.Struct, frozen=True, gc=False):
    """What ``acquire`` found: one per store call, so a struct (cheap to build, never
    in a cycle) rather than a frozen dataclass."""

    kind: int
    entry: Entry | None = None
    holder: str = ""
    relayed: UpstreamAnswer | None = None


StoreUnavailable = RedisUnavailable
"""A store call failed or timed out: the Redis seam's one error (``gateway/wire/redis.py``)."""


class StoreEvents(Protocol):
    """How a shared store tells the shield what other replicas did."""

    def invalidate(self, digest: str) -> None:
        """A confirmation rewrote or dropped the answer stored under ``digest``."""
        ...

    def reset(self) -> None:
        """Announcements may have been missed: forget every near-cached answer."""
        ...

    def orphaned(self, index: str, uuid: str, answer: UpstreamAnswer | None) -> None:
        """Reservation ``uuid`` was confirmed (``answer``; ``None``: dropped) but its uuid
        index was gone, so its stored answer, if any, could not be found to rewrite."""
        ...


class ShieldStore(Protocol):
    """Stored answers plus leases, keyed by shield digest (see ``keys.py``).

    Semantics both implementations keep (``tests/shield/test_store_contract.py``):

    - ``acquire`` is lookup-or-lease in one atomic step: FOUND with the entry, or LEASED
      (the lease, ``token``, lives ``lease_ms`` unless renewed), or HELD by another
      token. Called with ``holder`` (the token a waiter waits on) it can also answer
      RELAYED: that holder released with an answer for its waiters.
    - An entry is never returned at or after its ``expires_ms`` (judged by the
      gateway's clock, passed in, not the store's).
    - ``store`` keeps the first entry written for a key (a late writer does not replace
      it), then releases the lease if ``token`` still holds it and wakes waiters. A
      shared store queues the write on its connection when ``store`` is *called*, ahead
      of anything the process writes after the call; the awaitable only reports how it
      went. So a leaseholder can answer its client as soon as the store is on its way:
      the client's repeat, wherever it lands, reaches Redis after the store. The
      outcome is truthy when this entry was written, falsy when an earlier one was kept.
    - ``release`` is compare-and-delete on ``token`` and may leave ``relayed`` for the
      waiters of that token only; new pings never see it.
    - ``wait`` returns when the entry appears, the holder relays, or the lease is gone
      and this waiter took it over (only one waiter can). It follows a new holder if
      another waiter took over first, and raises ``TimeoutError`` at ``deadline``.
    """

    shared: bool
    """True when other processes share the store (a near-cache then needs events)."""

    @property
    def events_live(self) -> bool:
        """Whether announcements from other replicas are currently being received."""
        ...

    def set_events(self, events: StoreEvents) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def __len__(self) -> int: ...

    async def acquire(
        self, digest: str, token: str, lease_ms: int, now_ms: int, holder: str = ""
    ) -> Lookup: ...

    async def wait(
        self,
        digest: str,
        holder: str,
        token: str,
        lease_ms: int,
        deadline: float,
        clock_ms: Callable[[], int],
    ) -> Lookup: ...

    async def renew(self, digest: str, token: str, lease_ms: int) -> bool: ...

    def store(self, digest: str, token: str, entry: Entry, index: str) -> Awaitable[object]: ...

    async def release(self, digest: str, token: str, relayed: UpstreamAnswer | None) -> None: ...

    async def confirm(self, index: str, uuid: str, answer: UpstreamAnswer | None) -> str | None:
        """Replace (or, with ``None``, drop) the entry of reservation ``uuid``.

        Returns the shield digest that was changed, ``None`` when nothing was stored. A
        shared store that finds no index announces the confirmation instead
        (:meth:`StoreEvents.orphaned`), to every replica including this one.
        """
        ...

    async def confirm_digest(self, digest: str, uuid: str, answer: UpstreamAnswer | None) -> bool:
        """As ``confirm``, for a stored answer found by its shield digest."""
        ...
