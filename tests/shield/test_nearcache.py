"""The near-cache: LRU bound, expiry, and the invalidation race."""

from __future__ import annotations

from gateway.shield.entry import Entry
from gateway.shield.nearcache import NearCache
from gateway.wire.answer import UpstreamAnswer


def entry(expires_ms: int, body: bytes = b"{}") -> Entry:
    return Entry(UpstreamAnswer(200, body), expires_ms, "u")


def test_hit_until_expiry_then_gone() -> None:
    near = NearCache(10)
    near.put("d", entry(1000), near.generation)
    assert near.get("d", 999) is not None
    assert near.get("d", 1000) is None
    assert len(near) == 0


def test_lru_bound_evicts_least_recently_used() -> None:
    near = NearCache(2)
    near.put("a", entry(10**9), near.generation)
    near.put("b", entry(10**9), near.generation)
    assert near.get("a", 0) is not None  # a is now the most recent
    near.put("c", entry(10**9), near.generation)
    assert near.get("b", 0) is None
    assert near.get("a", 0) is not None
    assert near.get("c", 0) is not None


def test_answer_read_before_an_invalidation_is_not_cached() -> None:
    near = NearCache(10)
    generation = near.generation  # noted before asking Redis
    near.invalidate("d")  # a confirmation arrives while the reply is in flight
    near.put("d", entry(10**9, b'{"status":"reserved"}'), generation)
    assert near.get("d", 0) is None
    near.put("d", entry(10**9, b'{"status":"confirmed"}'), near.generation)
    assert near.get("d", 0) is not None


def test_invalidate_and_clear() -> None:
    near = NearCache(10)
    near.put("a", entry(10**9), near.generation)
    near.put("b", entry(10**9), near.generation)
    near.invalidate("a")
    assert near.get("a", 0) is None
    assert near.get("b", 0) is not None
    near.clear()
    assert len(near) == 0


def test_size_zero_caches_nothing() -> None:
    near = NearCache(0)
    near.put("a", entry(10**9), near.generation)
    assert near.get("a", 0) is None
