"""The in-process store: expiry on a controllable clock (property test) and its LRU bound."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.shield.base import FOUND, LEASED
from gateway.shield.memory_store import MemoryShieldStore
from tests.shield.conftest import make_entry_for

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
