"""GATEWAY_REDIS_URL schemes: redis://, rediss://, unix://, redis+cluster://."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection

from gateway.shield.base import FOUND, LEASED
from gateway.shield.memory_store import wall_ms
from gateway.shield.redis_store import build_client
from tests.shield.conftest import make_entry_for
from tests.support.redis_stores import OwnSeamShieldStore


@pytest.fixture
def unix_redis() -> Iterator[str]:
    tmp = Path(tempfile.mkdtemp(prefix="rtbgw-unix-"))
    path = tmp / "redis.sock"
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(path), "--save", "", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not path.exists():
            assert time.monotonic() < deadline, "redis-server did not create its socket"
            time.sleep(0.02)
        yield f"unix://{path}?db=0"
    finally:
        proc.kill()
        proc.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)


async def test_unix_socket_store_works(unix_redis: str) -> None:
    store = OwnSeamShieldStore.from_url(unix_redis, timeout_s=1.0, max_connections=4)
    await store.start()
    try:
        assert (await store.acquire("a" * 32, "t", 1000, wall_ms())).kind == LEASED
        await store.store("a" * 32, "t", make_entry_for("u", wall_ms() + 60_000), "")
        assert (await store.acquire("a" * 32, "t2", 1000, wall_ms())).kind == FOUND
    finally:
        await store.close()


async def test_client_kinds_and_short_timeouts_per_scheme() -> None:
    tls = build_client("rediss://:secret@cache.example:6380/1", timeout_s=0.05, max_connections=8)
    assert isinstance(tls, Redis)
    pool = tls.connection_pool
    assert pool.connection_class is SSLConnection
    assert pool.connection_kwargs["socket_timeout"] == 0.05
    assert pool.connection_kwargs["socket_connect_timeout"] == 0.05
    assert pool.connection_kwargs["retry"].get_retries() == 0
    await tls.aclose()
    unix = build_client("unix:///run/redis.sock", timeout_s=0.05, max_connections=8)
    assert unix.connection_pool.connection_class is UnixDomainSocketConnection  # type: ignore[union-attr]
    await unix.aclose()
    cluster = build_client("redis+cluster://10.0.0.1:7000", timeout_s=0.05, max_connections=8)
    assert isinstance(cluster, RedisCluster)
    await cluster.aclose()
    await asyncio.sleep(0)
