"""Several gateway processes sharing one Redis, for the shield's cross-replica tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from tests.support.servers import GatewayProcess


@contextlib.asynccontextmanager
async def gateway_processes(
    count: int, redis_url: str, upstream_url: str, **extra: str
) -> AsyncIterator[list[GatewayProcess]]:
    env: Mapping[str, str] = {
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_RTB_UPSTREAM_URL": upstream_url,
        # Access lines would fill the child's stderr pipe in a 5,000-request test.
        "GATEWAY_LOG_LEVEL": "warning",
        # These tests are about semantics on a busy CI box, where an event loop can stall
        # for a second: a Redis call timing out there would (correctly) fail open, and a
        # renewal arriving late would let a lease lapse. Failure handling has its own tests.
        "GATEWAY_REDIS_TIMEOUT_MS": "5000",
        "GATEWAY_SHIELD_LEASE_MS": "5000",
        "GATEWAY_RTB_TIMEOUT_MS": "10000",
        **extra,
    }
    procs = [GatewayProcess(env) for _ in range(count)]
    try:
        await asyncio.gather(*(asyncio.to_thread(p.wait_ready, 60.0) for p in procs))
        yield procs
    finally:
        for p in procs:
            await asyncio.to_thread(p.stop)
