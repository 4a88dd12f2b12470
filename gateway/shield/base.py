"""The seam between the RTB endpoint and the ping shield.

The endpoint hands the shield a validated ping, its deadline and a ``forward`` callable;
the shield decides whether to answer from its store (hit), wait for another request
already forwarding the same caller (coalesced), forward and store (miss), or forward
without the store because the store is failing (error/bypass). The endpoint never sees
keys, leases or Redis.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from gateway.rtb.ping import Ping
from gateway.upstream.answer import UpstreamAnswer

Forward = Callable[[], Awaitable[UpstreamAnswer]]

HIT = "hit"
MISS = "miss"
COALESCED = "coalesced"
ERROR = "error"
BYPASS = "bypass"


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


class PassThroughShield:
    """No shield at all: every ping is forwarded (used until a store is configured)."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def answer(
        self, ping: Ping, deadline: float, forward: Forward
    ) -> tuple[UpstreamAnswer, str]:
        return await forward(), MISS

    async def confirmed(self, rtb_key: str, uuid: str, answer: UpstreamAnswer) -> None:
        return None
