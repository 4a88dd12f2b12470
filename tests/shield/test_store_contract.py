"""The ShieldStore contract, asserted identically against the in-process and Redis stores."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from gateway.shield.base import FOUND, HELD, LEASED, RELAYED, ShieldStore
from gateway.shield.memory_store import wall_ms
from gateway.wire.answer import UpstreamAnswer
from tests.shield.conftest import make_entry_for

D = "0" * 32
LONG = 60_000


def later(seconds: float = 60) -> int:
    return wall_ms() + int(seconds * 1000)


def deadline_in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_lookup_or_lease_grants_one_lease(store: ShieldStore) -> None:
    assert (await store.acquire(D, "t1", LONG, wall_ms())).kind == LEASED
    second = await store.acquire(D, "t2", LONG, wall_ms())
    assert (second.kind, second.holder) == (HELD, "t1")
    waiting = await store.acquire(D, "t2", LONG, wall_ms(), holder="t1")
    assert (waiting.kind, waiting.holder) == (HELD, "t1")


async def test_stored_answer_is_found_by_everyone(store: ShieldStore) -> None:
    await store.acquire(D, "t1", LONG, wall_ms())
    entry = make_entry_for("u1", later())
    await store.store(D, "t1", entry, "i" * 32)
    found = await store.acquire(D, "t2", LONG, wall_ms())
    assert found.kind == FOUND
    assert found.entry is not None
    assert found.entry.answer == entry.answer
    assert found.entry.expires_ms == entry.expires_ms


async def test_first_writer_wins(store: ShieldStore) -> None:
    await store.acquire(D, "t1", LONG, wall_ms())
    assert await store.store(D, "t1", make_entry_for("first", later()), "")
    # A late writer is told its answer was not kept (it must not near-cache it).
    assert not await store.store(D, "t2", make_entry_for("second", later()), "")
    found = await store.acquire(D, "t3", LONG, wall_ms())
    assert found.entry is not None
    assert msgspec.json.decode(found.entry.answer.body)["uuid"] == "first"


async def test_entry_is_never_returned_at_or_after_expiry(store: ShieldStore) -> None:
    expires = later(30)
    await store.acquire(D, "t1", LONG, wall_ms())
    await store.store(D, "t1", make_entry_for("u", expires), "")
    assert (await store.acquire(D, "t2", LONG, expires - 1)).kind == FOUND
    assert (await store.acquire(D, "t3", LONG, expires)).kind == LEASED


async def test_relayed_failure_reaches_that_holders_waiters_only(store: ShieldStore) -> None:
    await store.acquire(D, "t1", LONG, wall_ms())
    failure = UpstreamAnswer(504, b'{"error":"upstream_timeout"}', "application/json")
    await store.release(D, "t1", failure)
    relayed = await store.acquire(D, "w1", LONG, wall_ms(), holder="t1")
    assert (relayed.kind, relayed.relayed) == (RELAYED, failure)
    # A new ping is not told about the failure: it holds a fresh lease and forwards.
    assert (await store.acquire(D, "fresh", LONG, wall_ms())).kind == LEASED


async def test_released_lease_is_taken_over_by_one_waiter(store: ShieldStore) -> None:
    await store.acquire(D, "t1", LONG, wall_ms())
    await store.release(D, "t1", None)
    assert (await store.acquire(D, "w1", LONG, wall_ms(), holder="t1")).kind == LEASED
    other = await store.acquire(D, "w2", LONG, wall_ms(), holder="t1")
    assert (other.kind, other.holder) == (HELD, "w1")


async def test_release_is_compare_and_delete(store: ShieldStore) -> None:
    await store.acquire(D, "a", LONG, wall_ms())
    await store.release(D, "b", None)  # not b's lease: must not be freed
    look = await store.acquire(D, "c", LONG, wall_ms())
    assert (look.kind, look.holder) == (HELD, "a")


async def test_renew_only_by_the_holder(store: ShieldStore) -> None:
    await store.acquire(D, "t1", 200, wall_ms())
    assert await store.renew(D, "t1", LONG)
    assert not await store.renew(D, "t2", LONG)
    assert not await store.renew("f" * 32, "t1", LONG)


async def test_lapsed_lease_is_taken_over_by_a_waiter(store: ShieldStore) -> None:
    await store.acquire(D, "dead", 150, wall_ms())  # the holder never renews nor releases
    look = await store.wait(D, "dead", "w1", LONG, deadline_in(10), wall_ms)
    assert look.kind == LEASED


async def test_wait_gives_up_at_the_waiters_deadline(store: ShieldStore) -> None:
    await store.acquire(D, "t1", LONG, wall_ms())
    with pytest.raises(TimeoutError):
        await store.wait(D, "t1", "w1", LONG, deadline_in(0.15), wall_ms)


async def test_waiters_get_the_stored_answer(store: ShieldStore) -> None:
    await store.acquire(D, "t1", LONG, wall_ms())
    waiters = [
        asyncio.create_task(store.wait(D, "t1", f"w{i}", LONG, deadline_in(10), wall_ms))
        for i in range(10)
    ]
    await asyncio.sleep(0)
    await store.store(D, "t1", make_entry_for("u", later()), "")
    looks = await asyncio.gather(*waiters)
    assert {look.kind for look in looks} == {FOUND}


async def test_dead_holder_is_replaced_by_exactly_one_waiter(store: ShieldStore) -> None:
    await store.acquire(D, "t1", LONG, wall_ms())
    waiters = {
        f"w{i}": asyncio.create_task(store.wait(D, "t1", f"w{i}", LONG, deadline_in(10), wall_ms))
        for i in range(10)
    }
    await asyncio.sleep(0)
    await store.release(D, "t1", None)  # gave up without an answer (cancelled)
    done, _ = await asyncio.wait(waiters.values(), return_when=asyncio.FIRST_COMPLETED)
    (first,) = done
    assert first.result().kind == LEASED
    new_holder = next(t for t, task in waiters.items() if task is first)
    await store.store(D, new_holder, make_entry_for("u", later()), "")
    looks = [await task for task in waiters.values()]
    assert [look.kind for look in looks].count(LEASED) == 1
    assert [look.kind for look in looks].count(FOUND) == 9


async def test_confirm_rewrites_the_stored_copy_keeping_its_expiry(store: ShieldStore) -> None:
    expires = later()
    await store.acquire(D, "t1", LONG, wall_ms())
    await store.store(D, "t1", make_entry_for("abc", expires), "i" * 32)
    confirmed = make_entry_for("abc", 0, status="confirmed").answer
    assert await store.confirm("i" * 32, "ABC", confirmed) == D
    found = await store.acquire(D, "t2", LONG, wall_ms())
    assert found.entry is not None
    assert msgspec.json.decode(found.entry.answer.body)["status"] == "confirmed"
    assert found.entry.expires_ms == expires


async def test_confirm_of_another_reservation_changes_nothing(store: ShieldStore) -> None:
    await store.acquire(D, "t1", LONG, wall_ms())
    await store.store(D, "t1", make_entry_for("abc", later()), "i" * 32)
    assert await store.confirm("i" * 32, "other", None) is None
    assert await store.confirm("j" * 32, "abc", None) is None
    assert (await store.acquire(D, "t2", LONG, wall_ms())).kind == FOUND


async def test_confirm_without_a_reservation_drops_the_copy(store: ShieldStore) -> None:
    await store.acquire(D, "t1", LONG, wall_ms())
    await store.store(D, "t1", make_entry_for("abc", later()), "i" * 32)
    assert await store.confirm("i" * 32, "abc", None) == D
    assert (await store.acquire(D, "t2", LONG, wall_ms())).kind == LEASED
