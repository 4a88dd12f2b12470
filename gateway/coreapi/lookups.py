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

Writes clear reads (:meth:`Lookups.invalidate`, called after a write's 2xx and before its
answer goes back): every cache key carries its group's generation, the shared counter in
the store plus this process's own. Bumping both makes every earlier entry unreachable and
keeps a later lookup from joining a lookup that started before the write. Why this is
right under races: a lookup reads the generation *before* it asks the upstream, so an
answer fetched before the write lands can only ever be stored under the old generation,
which no lookup reads once the bump is done; and the bump is done before the client that
wrote gets its answer, so any GET it (or anyone) sends afterwards reads the new one.
Deleting known keys instead would race with a lookup that stores its pre-write answer
just after the delete. The cost is one more small Redis GET per lookup.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.config import Settings
from gateway.coreapi.cache import CacheBypassed, CacheError, LookupCache, cache_key
from gateway.coreapi.client import CoreApiClient, Upstream
from gateway.observe.metrics import Metrics
from gateway.observe.results import BYPASS, COALESCED, ERROR, HIT, MISS, RESULTS
from gateway.wire.answer import UpstreamAnswer

log = logging.getLogger("gateway.coreapi")


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
        self._count = {r: metrics.bind(metrics.lookup_cache, r) for r in RESULTS}
        self._local: dict[str, int] = {}  # this process's writes per cache group
        self._missed_bumps = metrics.lookup_invalidation_failures

    async def get(
        self,
        upstream: Upstream,
        path: str,
        query: bytes,
        *,
        group: str = "",
        authorization: str | None = None,
    ) -> tuple[UpstreamAnswer, str]:
        """The answer for a GET and how it was obtained."""
        shared, first = await self._generation(group)
        generation = f"{self._local.get(group, 0)}.{shared}"
        key = cache_key(upstream, path, query, authorization, generation)
        task = self._inflight.get(key)
        joined = task is not None
        if task is None:
            task = asyncio.ensure_future(
                self._resolve(key, upstream, path, query, authorization, first)
            )
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        answer, result = await asyncio.shield(task)
        if joined and result != HIT:
            result = COALESCED
        self._count[result].inc()
        return answer, result

    async def _generation(self, group: str) -> tuple[int, str]:
        """(the group's shared generation, MISS) or (-1, ERROR/BYPASS) when unreadable:
        then the cache is neither read nor written for this lookup."""
        if self.cache is None:
            return 0, MISS
        try:
            return await self.cache.generation(group), MISS
        except CacheBypassed:
            return -1, BYPASS
        except CacheError as exc:
            log.warning("lookup cache read failed", extra={"reason": str(exc)})
            return -1, ERROR

    async def invalidate(self, group: str) -> None:
        """A write through this gateway succeeded: no cached read of ``group`` is served
        from now on, here or on any replica sharing the cache."""
        self._local[group] = self._local.get(group, 0) + 1
        if self.cache is None:
            return
        try:
            await self.cache.bump(group)
        except CacheError as exc:
            self._missed_bumps.inc()
            log.warning(
                "lookup cache invalidation failed; other replicas may serve cached reads "
                "of this group until their TTL",
                extra={"reason": str(exc), "group": group},
            )

    async def _resolve(
        self,
        key: str,
        upstream: Upstream,
        path: str,
        query: bytes,
        authorization: str | None,
        result: str,
    ) -> tuple[UpstreamAnswer, str]:
        if self.cache is not None and result == MISS:
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
        answer = await self.client.get(upstream, path, query, authorization=authorization)
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
