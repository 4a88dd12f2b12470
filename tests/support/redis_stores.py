"""Redis stores with a seam of their own, closed with them: what tests and tools need.

The gateway builds one Redis seam per process and hands it to every store (the app closes
it); a test of one store alone wants that store to bring and close its own.
"""

from __future__ import annotations

from gateway.coreapi.cache import COOLDOWN_S, MAX_CONNECTIONS, RedisLookupCache
from gateway.shield.redis_store import ObserverFactory, RedisShieldStore
from gateway.wire.redis import Breaker, RedisSeam


class OwnSeamShieldStore(RedisShieldStore):
    """A shield store on a seam of its own."""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout_s: float,
        max_connections: int,
        observe: ObserverFactory | None = None,
    ) -> OwnSeamShieldStore:
        seam = RedisSeam(url, timeout_s=timeout_s, max_connections=max_connections)
        return cls(seam, observe=observe)

    async def close(self) -> None:
        await super().close()
        await self._seam.close()


class OwnSeamLookupCache(RedisLookupCache):
    """A lookup cache on a seam of its own: short timeouts, no retries, skipped for
    ``COOLDOWN_S`` after one failure."""

    def __init__(self, url: str, timeout_s: float) -> None:
        super().__init__(
            RedisSeam(
                url,
                timeout_s=timeout_s,
                max_connections=MAX_CONNECTIONS,
                breaker=Breaker(1, COOLDOWN_S),
            )
        )

    async def close(self) -> None:
        await super().close()
        await self._seam.close()
