"""The queue's bound, the writer's batches and flush, and rows built from hostile values."""

from __future__ import annotations

import asyncio
import hmac

import msgspec

from gateway.ledger.events import MAX_TEXT, Event, Materializer
from gateway.ledger.memory import MemoryLedgerStore
from gateway.ledger.outcomes import Reservation
from gateway.ledger.writer import Ledger


def _event(n: int, **fields: object) -> Event:
    return Event(1_765_000_000.0 + n, f"req-{n}", "/rtbs.json", 200, "reserved", **fields)  # type: ignore[arg-type]


async def test_the_queue_is_bounded_and_counts_what_it_refuses() -> None:
    dropped: list[int] = []
    ledger = Ledger(MemoryLedgerStore(100), Materializer(), queue_max=10, on_dropped=dropped.append)
    for n in range(25):
        ledger.record(_event(n))
    assert ledger.depth == 10
    assert ledger.dropped == 15 == sum(dropped)
    await ledger.start()
    assert await ledger.flush(5.0)
    await ledger.close()
    rows = [row async for row in ledger.store.export(None, None, 1000)]
    # The oldest ten were kept; the newest were refused, never the other way round.
    assert [r.request_id for r in rows] == [f"req-{n}" for n in range(10)]
    assert ledger.written == 10


async def test_close_flushes_what_is_queued() -> None:
    store = MemoryLedgerStore(10_000)
    ledger = Ledger(store, Materializer(), queue_max=10_000, batch_max=100)
    await ledger.start()
    for n in range(1234):
        ledger.record(_event(n))
    await ledger.close()
    assert len(store) == 1234
    assert ledger.depth == 0


async def test_a_backlog_is_written_in_slices_that_let_pings_run() -> None:
    """A backlog of 5,000 events never holds the loop for all of it: another task runs
    between slices, sees part of it written, and the writer takes the store's batch size."""
    store = MemoryLedgerStore(10_000)
    ledger = Ledger(store, Materializer(), queue_max=10_000)
    assert ledger.batch_max == MemoryLedgerStore.batch_max < 5000
    for n in range(5000):
        ledger.record(_event(n))
    seen: list[int] = []
    done = asyncio.Event()

    async def ping_like() -> None:
        while not done.is_set():
            seen.append(len(store))
            await asyncio.sleep(0)

    probe = asyncio.create_task(ping_like())
    await ledger.start()
    assert await ledger.flush(10.0)
    done.set()
    await probe
    await ledger.close()
    partial = {n for n in seen if 0 < n < 5000}
    # The loop turned many times while the backlog was written, not once before and after.
    assert len(partial) >= 5000 // MemoryLedgerStore.batch_max - 1
    assert len(store) == 5000


def test_the_memory_ring_keeps_the_newest() -> None:
    store = MemoryLedgerStore(3)
    materializer = Materializer()
    rows = [(float(n), materializer.row(_event(n))) for n in range(5)]
    asyncio.run(store.write(rows))
    assert len(store) == 3
    assert store.evicted == 2


def test_rows_from_hostile_values_never_raise_and_stay_bounded() -> None:
    hostile = "\x00\r\n\u2028\x1b[31m" + "x" * 100_000
    event = _event(
        1,
        publisher_id=hostile,
        sub_id=hostile,
        key=hostile,
        caller=hostile,
        reservation=Reservation(
            status=hostile,
            uuid=hostile,
            retreaver_payout=float("nan"),
            retreaver_seconds=1e300,
            inbound_number=hostile,
            expires_at=hostile,
        ),
        destination=hostile,
        auction=hostile,
        duration_s=0.001,
        upstream_s=None,
    )
    row = Materializer(b"k" * 32).row(event)
    assert row.payout is None
    assert row.seconds is None
    for value in (row.publisher_id, row.sub_id, row.inbound_number, row.destination):
        assert value is not None
        assert len(value) <= MAX_TEXT
        assert "\x00" not in value
    assert row.key_id is not None
    assert len(row.key_id) == 16
    assert row.caller is not None
    assert len(row.caller) == 64
    encoded = msgspec.json.encode(row)
    assert b"\n" not in encoded  # one line of NDJSON whatever it holds


def test_caller_digests_are_hmac_sha256_of_the_secret_repeats_included() -> None:
    secret = b"s" * 32
    materializer = Materializer(secret)
    numbers = ["+12125550100", "+12125550100", "+13105550199", "+12125550100", "+13105550199"]
    assert [materializer.caller_digest(n) for n in numbers] == [
        hmac.new(secret, n.encode(), "sha256").hexdigest() for n in numbers
    ]


def test_the_materializer_never_prints_its_secret() -> None:
    materializer = Materializer(b"very-secret-ledger-key")
    assert "very-secret" not in repr(materializer)
