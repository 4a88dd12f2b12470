"""The in-process store: expiry on a controllable clock (property test) and its LRU bound."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.shield.base import FOUND, LEASED
from gateway.shield.memory_store import SWEEP_PER_STORE, MemoryShieldStore
from tests.shield.conftest import make_entry_for
from tests.shield.test_service import eventually

DIGESTS = [f"{i:032x}" for i in range(4)]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(min_value=0, max_value=5_000)),
        st.tuples(
            st.just("store"), st.sampled_from(DIGESTS), st.integers(min_value=1, max_value=10_000)
        ),
        st.tuples(st.just("lookup"), st.sampled_from(DIGESTS)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_an_answer_is_served_before_its_expiry_and_never_after(steps: list[tuple]) -> None:
    """Model: digest -> expires_ms of the first answer stored and not yet expired."""

    async def run() -> None:
        now = [1_000_000]
        store = MemoryShieldStore(100, clock_ms=lambda: now[0])
        model: dict[str, int] = {}
        for n, step in enumerate(steps):
            if step[0] == "advance":
                now[0] += step[1]
                continue
            digest = step[1]
            live = digest in model and model[digest] > now[0]
            look = await store.acquire(digest, f"t{n}", 1000, now[0])
            if live:
                assert look.kind == FOUND
                assert look.entry is not None
                assert look.entry.expires_ms == model[digest]
                assert look.entry.expires_ms > now[0]
                continue
            assert look.kind == LEASED  # absent or expired: forwarded again
            if step[0] == "store":
                expires = now[0] + step[2]
                await store.store(digest, f"t{n}", make_entry_for("u", expires), "")
                model[digest] = expires
            else:
                await store.release(digest, f"t{n}", None)

    asyncio.run(run())


async def test_lru_cap_evicts_least_recently_used_and_its_index() -> None:
    store = MemoryShieldStore(2)
    far = 2**62
    for name in ("a", "b"):
        await store.acquire(name, "t", 1000, 0)
        await store.store(name, "t", make_entry_for(name, far), "idx-" + name)
    assert (await store.acquire("a", "t2", 1000, 0)).kind == FOUND  # a is recent now
    await store.acquire("c", "t", 1000, 0)
    await store.store("c", "t", make_entry_for("c", far), "idx-c")
    assert len(store) == 2
    assert (await store.acquire("b", "t3", 1000, 0)).kind == LEASED
    assert await store.confirm("idx-b", "b", None) is None  # the index went with it
    assert (await store.acquire("a", "t4", 1000, 0)).kind == FOUND


async def test_lease_expiry_follows_the_store_clock() -> None:
    now = [0]
    store = MemoryShieldStore(10, clock_ms=lambda: now[0])
    assert (await store.acquire("d", "t1", 500, 0)).kind == LEASED
    now[0] = 499
    assert (await store.acquire("d", "t2", 500, 0)).holder == "t1"
    now[0] = 500
    assert (await store.acquire("d", "t2", 500, 0)).kind == LEASED


async def test_expired_answers_are_freed_by_stores_and_by_the_sweep() -> None:
    """A burst of short-lived answers is freed once they expire (not merely hidden), on
    the store's clock: no sleeping, the clock is driven by the test."""
    now = [1_000_000]
    store = MemoryShieldStore(100_000, clock_ms=lambda: now[0])
    for i in range(10_000):
        digest = f"{i:032x}"
        await store.acquire(digest, "t", 1000, now[0])
        await store.store(digest, "t", make_entry_for(f"u{i}", now[0] + 5_000), f"idx{i}")
    assert len(store) == 10_000
    now[0] += 5_000  # every answer has expired
    # Each new answer frees a few expired ones on its way in.
    for i in range(100):
        digest = f"new{i:029x}"
        await store.store(digest, "t", make_entry_for("n", now[0] + 60_000), "")
    assert len(store) == 10_000 + 100 - 100 * SWEEP_PER_STORE
    # The sweep frees the rest in bounded batches; the live answers stay.
    while store.sweep(1000):
        pass
    assert len(store) == 100
    assert len(store._index) == 0
    assert len(store._expiry) == 100
    assert (await store.acquire("new" + "0" * 29, "t2", 1000, now[0])).kind == FOUND


async def test_sweep_timer_frees_an_idle_store() -> None:
    now = [1_000_000]
    store = MemoryShieldStore(1000, clock_ms=lambda: now[0], sweep_interval_s=0.01)
    await store.start()
    try:
        for i in range(500):
            await store.store(f"{i:032x}", "t", make_entry_for("u", now[0] + 1000), "")
        now[0] += 1000
        await eventually(lambda: len(store) == 0)
    finally:
        await store.close()


async def test_expiry_heap_stays_bounded_when_the_cap_evicts() -> None:
    """Answers pushed out by the cap leave stale heap items: rebuilt, never unbounded."""
    evicted = []
    store = MemoryShieldStore(100, on_evict=lambda: evicted.append(1))
    far = 2**62
    for i in range(1000):
        await store.store(f"{i:032x}", "t", make_entry_for("u", far), "")
    assert len(store) == 100
    assert len(evicted) == 900
    assert len(store._expiry) <= 200
