"""The ledger's bounded queue and its background writer.

``record()`` is the only call on the ping path: one length check and one ``append`` to a
deque, no I/O, no await, nothing that can raise on what a publisher sent (the event holds
references only). When the queue holds ``GATEWAY_LEDGER_QUEUE_MAX`` events the new one is
dropped and counted; the queue never grows past its bound, whatever the store does.

The writer task takes batches off the queue, materializes them (digests, formatting:
events.py) and hands them to the store. It shares the loop (and the core) with the pings,
so it never holds the loop for long: it materializes :data:`SLICE` events at a time and
lets the loop run between slices, and a store says how many rows it takes per ``write``
(``batch_max``: a few hundred for the in-process ring, whose write is CPU work; thousands
for PostgreSQL, whose write is a round trip). Before this, a batch of everything queued
in 100 ms was materialized in one go: 15 ms of loop held, which was a ping's p99.

A failing store (PostgreSQL down, slow, killed mid-batch) gets the same batch again
after a backoff that grows to a few seconds, while new events wait in the queue; the
store's idempotency by ``(request_id, leg)`` makes the retry safe. ``close()`` flushes
what is queued within ``flush_timeout_s`` (SIGTERM's drain), then stops; what could not
be written by then is counted as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable

from gateway.ledger.events import Event, Materializer
from gateway.ledger.store import LedgerStore, Stamped

log = logging.getLogger("gateway.ledger")

BATCH_MAX = 5000
# Events materialized between two turns of the loop: ~1 ms of CPU on the slow box.
SLICE = 128
IDLE_WAIT_S = 0.1
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 5.0
# Seconds of history behind "events written per second".
RATE_WINDOW_S = 10.0


def _nothing(_: int = 1) -> None:
    return None


class Ledger:
    """The queue, the writer task and their counters (shown on ``/stats`` and ``/metrics``)."""

    def __init__(
        self,
        store: LedgerStore,
        materializer: Materializer,
        *,
        queue_max: int,
        flush_timeout_s: float = 10.0,
        batch_max: int | None = None,
        on_dropped: Callable[[int], None] = _nothing,
        on_written: Callable[[int], None] = _nothing,
        on_failure: Callable[[int], None] = _nothing,
    ) -> None:
        self.store = store
        self.materializer = materializer
        self.queue_max = queue_max
        self.flush_timeout_s = flush_timeout_s
        # A store's own preference (``batch_max`` attribute), else BATCH_MAX.
        self.batch_max = batch_max or getattr(store, "batch_max", BATCH_MAX)
        self._queue: deque[Event] = deque()
        self._on_dropped = on_dropped
        self._on_written = on_written
        self._on_failure = on_failure
        self.dropped = 0
        self.written = 0
        self.failures = 0
        self.last_error: str | None = None
        self._in_hand = 0  # events taken off the queue and not yet written
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._samples: deque[tuple[float, int]] = deque(maxlen=64)

    # -- the ping path ---------------------------------------------------------------------

    def record(self, event: Event) -> None:
        """Queue ``event`` for the writer; drop and count it when the queue is full."""
        # The batch in the writer's hand counts too: the bound holds for all that waits.
        if len(self._queue) + self._in_hand < self.queue_max:
            self._queue.append(event)
        else:
            self.dropped += 1
            self._on_dropped(1)

    # -- state -----------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Events waiting: queued, plus the batch the writer holds."""
        return len(self._queue) + self._in_hand

    @property
    def writing(self) -> int:
        """Events of the batch the writer holds now (being written or retried)."""
        return self._in_hand

    def written_per_s(self) -> float:
        now = time.monotonic()
        self._sample(now)
        start = next(((t, n) for t, n in self._samples if now - t <= RATE_WINDOW_S), None)
        if start is None or now - start[0] < 0.5:
            return 0.0
        return round((self.written - start[1]) / (now - start[0]), 1)

    def stats(self) -> dict[str, object]:
        return {
            "store": self.store.description,
            "queue_depth": self.depth,
            "queue_max": self.queue_max,
            "written_total": self.written,
            "written_per_s": self.written_per_s(),
            "dropped_total": self.dropped,
            "write_failures_total": self.failures,
            "last_error": self.last_error,
        }

    def _sample(self, now: float) -> None:
        if not self._samples or now - self._samples[-1][0] >= 1.0:
            self._samples.append((now, self.written))

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything recorded so far is written (or ``timeout_s`` passes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.flush_timeout_s if timeout_s is None else timeout_s)
        self._wake.set()
        while self.depth and loop.time() < deadline:
            self._wake.set()
            await asyncio.sleep(0.01)
        return self.depth == 0

    async def close(self) -> None:
        """Flush within ``flush_timeout_s`` (the drain), then stop the writer and the store."""
        if self._task is not None:
            flushed = await self.flush()
            self._stopping = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            if not flushed:
                lost = self.depth
                self._queue.clear()
                self._in_hand = 0
                self.dropped += lost
                self._on_dropped(lost)
                log.warning("ledger not flushed before stopping", extra={"dropped": lost})
        await self.store.close()

    # -- the writer ------------------------------------------------------------------------

    async def _run(self) -> None:
        queue = self._queue
        while not self._stopping:
            if not queue:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_WAIT_S)
                continue
            count = min(len(queue), self.batch_max)
            batch = [queue.popleft() for _ in range(count)]
            self._in_hand = count
            try:
                rows = await self._materialize(batch)
                await self._write(rows)
            finally:
                self._in_hand = 0
            self._sample(time.monotonic())

    async def _materialize(self, batch: list[Event]) -> list[Stamped]:
        row = self.materializer.row
        rows: list[Stamped] = []
        for i, event in enumerate(batch):
            if i and not i % SLICE:
                await asyncio.sleep(0)  # let the pings waiting on the loop run
            try:
                # The stored time is the exported one: milliseconds (so filters agree).
                rows.append((int(event.at * 1000) / 1000, row(event)))
            except Exception as exc:  # a bug, never a publisher's input: keep the rest
                self.dropped += 1
                self._on_dropped(1)
                log.error("ledger event not materialized", extra={"error": type(exc).__name__})
        return rows

    async def _write(self, rows: list[Stamped]) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            try:
                await self.store.write(rows)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                self._on_failure(1)
                error = type(exc).__name__
                if error != self.last_error:
                    log.warning("ledger write failed; retrying", extra={"error": error})
                self.last_error = error
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
                continue
            if self.last_error is not None:
                log.info("ledger writes resumed", extra={"failures": self.failures})
            self.last_error = None
            self.written += len(rows)
            self._on_written(len(rows))
            return
