"""The near-cache: LRU bound, expiry, and the invalidation race."""

from __future__ import annotations

from gateway.shield.entry import Entry
from gateway.shield.nearcache import NearCache
from gateway.wire.answer import UpstreamAnswer


def entry(expires_ms: int, body: bytes = b"{}") -> Entry:
    return Entry(UpstreamAnswer(200, body), expires_ms, "u")


def test_hit_until_expiry_then_gone() -> None:
    near = NearCache(10)
    near.put("d", entry(1000), near.generation, 0)
    assert near.get("d", 999) is not None
    assert near.get("d", 1000) is None
    assert len(near) == 0


def test_lru_bound_evicts_least_recently_used() -> None:
    near = NearCache(2)
    near.put("a", entry(10**9), near.generation, 0)
    near.put("b", entry(10**9), near.generation, 0)
    assert near.get("a", 0) is not None  # a is now the most recent
    near.put("c", entry(10**9), near.generation, 0)
    assert near.get("b", 0) is None
    assert near.get("a", 0) is not None
    assert near.get("c", 0) is not None


def test_answer_read_before_an_invalidation_is_not_cached() -> None:
    near = NearCache(10)
    generation = near.generation  # noted before asking Redis
    near.invalidate("d")  # a confirmation arrives while the reply is in flight
    near.put("d", entry(10**9, b'{"status":"reserved"}'), generation, 0)
    assert near.get("d", 0) is None
    near.put("d", entry(10**9, b'{"status":"confirmed"}'), near.generation, 0)
    assert near.get("d", 0) is not None


def test_invalidate_and_clear() -> None:
    near = NearCache(10)
    near.put("a", entry(10**9), near.generation, 0)
    near.put("b", entry(10**9), near.generation, 0)
    near.invalidate("a")
    assert near.get("a", 0) is None
    assert near.get("b", 0) is not None
    near.clear()
    assert len(near) == 0


def test_size_zero_caches_nothing() -> None:
    near = NearCache(0)
    near.put("a", entry(10**9), near.generation, 0)
    assert near.get("a", 0) is None


def test_trusted_only_for_its_ttl_after_reading_redis() -> None:
    """After the TTL the copy is not served: the next repeat asks Redis again, so a
    replica whose copy Redis lost (FLUSHALL, eviction) cannot keep its own answer."""
    near = NearCache(10, ttl_ms=500)
    near.put("d", entry(10**9), near.generation, 1000)
    assert near.get("d", 1499) is not None
    assert near.get("d", 1500) is None
    assert len(near) == 0
    near.put("d", entry(10**9), near.generation, 1500)  # read from Redis again
    assert near.get("d", 1999) is not None
