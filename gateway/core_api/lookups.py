"""Lookups: one answer per (upstream, path, query, credentials), however many ask.

The first request for a key becomes its leader: it registers a task *before* its first
await, and that task reads the cache, else asks the Core API and stores a 200. Every
identical request that arrives while the task runs joins it (``coalesced``), so 50 equal
lookups cost one upstream request, and a leader whose client hangs up does not take its
followers down with it (the task is shielded). Coalescing is per process; the shared
Redis cache spreads answers across replicas.

Results, as counted in ``gateway_lookup_cache_total`` and sent back in ``X-Cache``:
``hit``, ``miss``, ``coalesced``, ``error`` (the cache failed; answered from upstream),
``bypass`` (the cache is being skipped after a failure; answered from upstream).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.config import Settings
from gateway.core_api.cache import CacheBypassed, CacheError, LookupCache, cache_key
from gateway.metrics import Metrics
from gateway.results import BYPASS, COALESCED, ERROR, HIT, MISS, RESULTS
from gateway.upstream.answer import UpstreamAnswer
from gateway.upstream.core_api import CoreApiClient, Upstream

log = logging.getLogger("gateway.core_api")


class Lookups:
    def __init__(
        self,
        client: CoreApiClient,
        cache: LookupCache | None,
        *,
        ttl_s: float,
        metrics: Metrics,
    ) -> None:
        self.client = client
        self.cache = cache if ttl_s > 0 else None
        self.ttl_s = ttl_s
        self._inflight: dict[str, asyncio.Task[tuple[UpstreamAnswer, str]]] = {}
        self._count = {r: metrics.lookup_cache.labels(r) for r in RESULTS}

    async def get(self, upstream: Upstream, path: str, query: bytes) -> tuple[UpstreamAnswer, str]:
        """The answer for a GET and how it was obtained."""
        key = cache_key(upstream, path, query)
        task = self._inflight.get(key)
        joined = task is not None
        if task is None:
            task = asyncio.ensure_future(self._resolve(key, upstream, path, query))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        answer, result = await asyncio.shield(task)
        if joined and result != HIT:
            result = COALESCED
        self._count[result].inc()
        return answer, result

    async def _resolve(
        self, key: str, upstream: Upstream, path: str, query: bytes
    ) -> tuple[UpstreamAnswer, str]:
        result = MISS
        if self.cache is not None:
            try:
                cached = await self.cache.get(key)
            except CacheBypassed:
                result = BYPASS
            except CacheError as exc:
                result = ERROR
                log.warning("lookup cache read failed", extra={"reason": str(exc)})
            else:
                if cached is not None:
                    return cached, HIT
        answer = await self.client.get(upstream, path, query)
        if answer.status == 200 and self.cache is not None and result == MISS:
            try:
                await self.cache.set(key, answer, self.ttl_s)
            except CacheError as exc:
                result = ERROR
                log.warning("lookup cache write failed", extra={"reason": str(exc)})
        return answer, result

    def _finished(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here: followers may all have gone away

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        self._inflight.clear()
        if self.cache is not None:
            await self.cache.close()
        await self.client.close()


def per_process_concurrency(settings: Settings) -> int:
    """The cap is per replica; ``--workers N`` processes share it (each at least 1)."""
    return max(1, settings.core_api_max_concurrency // max(1, settings.workers))
