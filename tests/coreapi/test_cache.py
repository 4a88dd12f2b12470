"""The lookup cache stores: the in-process LRU, and Redis (a real redis-server)."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
import redis.asyncio

from gateway.coreapi.cache import (
    KEY_PREFIX,
    CacheBypassed,
    CacheError,
    MemoryLookupCache,
    cache_key,
    entry_size,
)
from gateway.coreapi.client import Upstream
from gateway.wire.answer import UpstreamAnswer
from tests.support.redis_server import RedisServer
from tests.support.redis_stores import OwnSeamLookupCache

LINK = ("Link", '<http://up/calls.json?page=2>; rel="next"')


def _answer(body: bytes = b'[{"call":{}}]') -> UpstreamAnswer:
    return UpstreamAnswer(200, body, "application/json; charset=utf-8", (LINK,))


def test_the_key_depends_on_credentials_but_never_shows_them() -> None:
    a = cache_key(Upstream.V1, "/calls.json", b"api_key=secret-a&company_id=1")
    b = cache_key(Upstream.V1, "/calls.json", b"api_key=secret-b&company_id=1")
    c = cache_key(Upstream.V1, "/calls.json", b"api_key=secret-a&company_id=2")
    v2 = cache_key(Upstream.V2, "/calls.json", b"api_key=secret-a&company_id=1")
    assert len({a, b, c, v2}) == 4
    assert a == cache_key(Upstream.V1, "/calls.json", b"api_key=secret-a&company_id=1")
    assert a.startswith(KEY_PREFIX)
    assert "secret" not in a


async def test_memory_cache_round_trip_and_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("gateway.coreapi.cache.time.monotonic", lambda: now[0])
    cache = MemoryLookupCache(max_bytes=1 << 20)
    await cache.set("k", _answer(), ttl_s=5)
    assert await cache.get("k") == _answer()
    now[0] += 4.9
    assert await cache.get("k") == _answer()
    now[0] += 0.2
    assert await cache.get("k") is None
    assert len(cache) == 0
    assert cache.used == 0


async def test_memory_cache_evicts_least_recently_used_within_its_byte_budget() -> None:
    body = b"x" * 1000
    cache = MemoryLookupCache(max_bytes=3 * entry_size("a", _answer(body)))
    for key in ("a", "b", "c"):
        await cache.set(key, _answer(body), ttl_s=60)
    assert await cache.get("a") is not None  # a is now the most recent
    await cache.set("d", _answer(body), ttl_s=60)
    assert await cache.get("b") is None
    assert all([await cache.get(k) for k in ("a", "c", "d")])
    assert cache.used <= cache.max_bytes
    await cache.set("huge", _answer(b"y" * 10_000), ttl_s=60)  # larger than the budget
    assert await cache.get("huge") is None
    assert len(cache) == 3


def test_an_entry_is_charged_for_its_key_and_kept_headers_not_only_its_body() -> None:
    link = ("Link", "<http://up/calls.json?" + "q" * 6000 + '>; rel="next"')
    key = cache_key(Upstream.V1, "/calls.json", b"api_key=k")
    answer = UpstreamAnswer(200, b"[]", "application/json", (link,))
    assert entry_size(key, answer) > 6000 + len(key) + len(answer.body)


async def test_what_the_cache_counts_is_what_it_holds_within_20_percent() -> None:
    """tracemalloc's count of every byte the entries allocate against ``cache.used``."""
    cache = MemoryLookupCache(max_bytes=1 << 30)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            key = cache_key(Upstream.V1, "/calls.json", f"api_key=k&n={i}".encode())
            link = f'<http://up/calls.json?api_key=k&n={i}&page=2{"&x=1" * (i % 1500)}>; rel="n"'
            body = b'{"calls":[%d]}' % i * (i % 50 + 1)
            ct = "".join(("application/json; ", "charset=utf-8"))
            await cache.set(key, UpstreamAnswer(200, body, ct, (("Link", link),)), ttl_s=60)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) == 2000
    assert 0.8 * held <= cache.used <= 1.2 * held, (held, cache.used)


async def test_expired_entries_are_swept_by_later_inserts(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("gateway.coreapi.cache.time.monotonic", lambda: now[0])
    cache = MemoryLookupCache(max_bytes=1 << 30)
    for i in range(100):
        await cache.set(f"old{i}", _answer(), ttl_s=5)
    now[0] += 6  # all lapsed; none is ever read again
    for i in range(20):
        await cache.set(f"new{i}", _answer(), ttl_s=5)
    assert len(cache) < 100  # bounded work per insert, but already sweeping
    for i in range(20, 100):
        await cache.set(f"new{i}", _answer(), ttl_s=5)
    assert len(cache) == 100  # only the live ones are left
    assert cache.used == sum(entry_size(f"new{i}", _answer()) for i in range(100))


async def test_the_byte_cap_holds_for_any_entry_size() -> None:
    cache = MemoryLookupCache(max_bytes=64 * 1024)
    for i in range(3000):
        link = ("Link", "<http://up/x?" + "q" * (i % 7000) + ">")
        await cache.set(f"k{i}", UpstreamAnswer(200, b"x" * (i % 900), "a/b", (link,)), 60)
        assert cache.used <= cache.max_bytes
    assert cache.used == sum(size for _, _, size in cache._entries.values())


async def test_redis_cache_round_trip_with_a_millisecond_ttl(redis_server: RedisServer) -> None:
    cache = OwnSeamLookupCache(redis_server.url, 0.5)
    try:
        key = cache_key(Upstream.V1, "/calls.json", b"api_key=k")
        assert await cache.get(key) is None
        await cache.set(key, _answer(), ttl_s=2.5)
        assert await cache.get(key) == _answer()
        probe = redis.asyncio.from_url(redis_server.url)
        try:
            ttl = await probe.pttl(key)
            assert 0 < ttl <= 2500
            assert await probe.keys("*") == [key.encode()]  # one entry, named by a digest
        finally:
            await probe.aclose()
    finally:
        await cache.close()


async def test_redis_cache_fails_fast_then_skips_the_store(redis_server: RedisServer) -> None:
    cache = OwnSeamLookupCache(redis_server.url, 0.2)
    try:
        await cache.set("k", _answer(), ttl_s=5)
        redis_server.kill()
        with pytest.raises(CacheError) as first:
            await cache.get("k")
        assert not isinstance(first.value, CacheBypassed)
        with pytest.raises(CacheBypassed):
            await cache.get("k")
        with pytest.raises(CacheBypassed):
            await cache.set("k", _answer(), ttl_s=5)
    finally:
        await cache.close()
