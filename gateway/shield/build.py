"""build_shield: the shield the settings ask for.

No ``GATEWAY_REDIS_URL``: the in-process store (one replica; with ``--workers N`` each
worker shields on its own). With it: the Redis store, shared by every replica, with a
near-cache in front (``GATEWAY_SHIELD_NEAR_CACHE_SIZE``, 0 turns it off).
"""

from __future__ import annotations

from gateway.config import Settings
from gateway.metrics import Metrics
from gateway.shield.base import ShieldStore
from gateway.shield.breaker import Breaker
from gateway.shield.memory import MemoryShieldStore
from gateway.shield.service import StoreShield


def build_store(settings: Settings, metrics: Metrics | None = None) -> ShieldStore:
    if settings.redis_url is None:
        return MemoryShieldStore(settings.shield_memory_max_entries)
    from gateway.shield.redis import RedisShieldStore

    return RedisShieldStore.from_url(
        settings.redis_url.reveal(),
        timeout_s=settings.redis_timeout_s,
        max_connections=settings.redis_max_connections,
        observe=metrics.observe_redis if metrics is not None else None,
    )


def build_shield(settings: Settings, metrics: Metrics | None = None) -> StoreShield:
    return StoreShield(
        build_store(settings, metrics),
        scope=settings.shield_scope,
        max_ttl_s=settings.shield_max_ttl_s,
        lease_ms=settings.shield_lease_ms,
        near_cache_size=settings.shield_near_cache_size,
        breaker=Breaker(settings.shield_bypass_after, settings.shield_bypass_ms / 1000),
        metrics=metrics,
    )
