"""build_shield: the shield the settings ask for.

No ``GATEWAY_REDIS_URL``: the in-process store (one replica; with ``--workers N`` each
worker shields on its own). With it: the Redis store over the process's one Redis seam,
shared by every replica, with a near-cache in front (``GATEWAY_SHIELD_NEAR_CACHE_SIZE``,
0 turns it off). The seam's breaker is the shield's: a failing Redis is skipped by the
shield, the rate limiter and the lookup cache together.
"""

from __future__ import annotations

from gateway.config import Settings
from gateway.metrics import Metrics
from gateway.redis import Breaker, RedisSeam
from gateway.shield.base import ShieldStore
from gateway.shield.memory import MemoryShieldStore
from gateway.shield.service import StoreShield


def seam_breaker(settings: Settings) -> Breaker:
    """The one skip-Redis-after-failures breaker of a process."""
    return Breaker(settings.shield_bypass_after, settings.shield_bypass_ms / 1000)


def build_seam(settings: Settings) -> RedisSeam | None:
    """The process's Redis seam, or ``None`` without ``GATEWAY_REDIS_URL``."""
    if settings.redis_url is None:
        return None
    return RedisSeam(
        settings.redis_url.reveal(),
        timeout_s=settings.redis_timeout_s,
        max_connections=settings.redis_max_connections,
        breaker=seam_breaker(settings),
    )


def build_store(
    settings: Settings,
    metrics: Metrics | None = None,
    seam: RedisSeam | None = None,
    *,
    owns_seam: bool = False,
) -> ShieldStore:
    if seam is None:
        return MemoryShieldStore(settings.shield_memory_max_entries)
    from gateway.shield.redis import RedisShieldStore

    return RedisShieldStore(
        seam,
        observe=metrics.observe_redis if metrics is not None else None,
        owns_seam=owns_seam,
    )


def build_shield(
    settings: Settings, metrics: Metrics | None = None, seam: RedisSeam | None = None
) -> StoreShield:
    """The shield over ``seam`` (the app's; closed by the app), or over a seam of its own
    when ``GATEWAY_REDIS_URL`` is set and none is given."""
    owns = seam is None and settings.redis_url is not None
    if owns:
        seam = build_seam(settings)
    store = build_store(settings, metrics, seam, owns_seam=owns)
    return StoreShield(
        store,
        scope=settings.shield_scope,
        max_ttl_s=settings.shield_max_ttl_s,
        lease_ms=settings.shield_lease_ms,
        near_cache_size=settings.shield_near_cache_size,
        breaker=seam.breaker if seam is not None else seam_breaker(settings),
        metrics=metrics,
    )
