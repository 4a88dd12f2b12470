"""Shield fixtures: both store implementations behind one parametrized fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from gateway.shield.base import ShieldStore
from gateway.shield.entry import Entry
from gateway.shield.memory_store import MemoryShieldStore
from gateway.wire.answer import UpstreamAnswer
from tests.support.redis_server import RedisServer
from tests.support.redis_stores import OwnSeamShieldStore

# Semantics tests give Redis calls a generous timeout: CI boxes are busy and a spurious
# timeout would test the failure path, which has tests of its own.
SEMANTICS_TIMEOUT_S = 1.0


def make_entry_for(uuid: str, expires_ms: int, status: str = "reserved") -> Entry:
    body = msgspec.json.encode({"uuid": uuid, "status": status, "retreaver_ping_shield": True})
    return Entry(UpstreamAnswer(200, body), expires_ms, uuid)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ShieldStore]:
    if request.param == "memory":
        s: ShieldStore = MemoryShieldStore(1000)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        s = OwnSeamShieldStore.from_url(
            server.url, timeout_s=SEMANTICS_TIMEOUT_S, max_connections=32
        )
    await s.start()
    try:
        yield s
    finally:
        await s.close()
