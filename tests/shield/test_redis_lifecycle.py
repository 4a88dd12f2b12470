"""The Redis store's lifecycle: its subscription comes up, and close() always finishes."""

from __future__ import annotations

import asyncio
import time

from gateway.shield.redis_store import RedisShieldStore
from tests.shield.conftest import make_entry_for
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.redis_stores import OwnSeamShieldStore


class Events:
    def __init__(self) -> None:
        self.invalidated: list[str] = []
        self.resets = 0
        self.got = asyncio.Event()

    def invalidate(self, digest: str) -> None:
        self.invalidated.append(digest)
        self.got.set()

    def reset(self) -> None:
        self.resets += 1


async def live(store: RedisShieldStore) -> None:
    end = time.monotonic() + 10
    while not store.events_live:  # no event to wait on: the subscription is internal
        assert time.monotonic() < end, "subscription did not come up"
        await asyncio.sleep(0.01)


async def test_close_finishes_whenever_it_is_called(redis_server: RedisServer) -> None:
    # A cancellation landing on redis-py's pub/sub read timeout used to be swallowed,
    # leaving close() waiting forever; close at many different moments.
    for i in range(30):
        store = OwnSeamShieldStore.from_url(redis_server.url, timeout_s=0.05, max_connections=4)
        await store.start()
        await asyncio.sleep(i * 0.005)
        async with asyncio.timeout(10):
            await store.close()


async def test_close_finishes_when_redis_is_unreachable() -> None:
    store = OwnSeamShieldStore.from_url(
        f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.05, max_connections=4
    )
    await store.start()
    assert not store.events_live
    async with asyncio.timeout(10):
        await store.close()


async def test_confirmation_on_one_replica_reaches_the_others(redis_server: RedisServer) -> None:
    stores = [
        OwnSeamShieldStore.from_url(redis_server.url, timeout_s=1.0, max_connections=4)
        for _ in range(3)
    ]
    events = [Events() for _ in stores]
    for store, ev in zip(stores, events, strict=True):
        store.set_events(ev)
        await store.start()
    try:
        for store in stores:
            await live(store)
        assert all(ev.resets >= 1 for ev in events)  # near-caches start from empty
        digest = "d" * 32
        await stores[0].acquire(digest, "t", 1000, 0)
        await stores[0].store(digest, "t", make_entry_for("u", 2**62), "i" * 32)
        assert await stores[0].confirm("i" * 32, "u", None) == digest
        async with asyncio.timeout(10):
            for ev in events:
                await ev.got.wait()
        assert all(ev.invalidated == [digest] for ev in events)
    finally:
        for store in stores:
            await store.close()
