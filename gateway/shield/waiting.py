"""How a waiter waits for another request's upstream answer: wake-ups plus polling.

A waiter re-runs lookup-or-lease with the token it waits on until the answer is stored,
the holder relays a failure, or the lease is gone and the waiter takes it over. It is
woken early when the holder announces a result (in process, or over Redis pub/sub), and
polls with backoff in case an announcement is missed or the holder died silently (its
lease then simply expires). Polls back off from 20 ms to 200 ms, so a few hundred
waiters cost Redis a few thousand tiny scripts per second at most, and a dead holder is
noticed at most 200 ms after its lease lapses. Nothing blocks in Redis (no ``BLPOP``), so
every call keeps its short timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gateway.shield.base import HELD, Lookup

POLL_FIRST_S = 0.02
POLL_MAX_S = 0.2

Acquire = Callable[[str, str, int, int, str], Awaitable[Lookup]]


class Wakeups:
    """Per-digest wake-up calls for the waiters of this process."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        return len(self._waiters)

    def wake(self, digest: str) -> None:
        waiters = self._waiters.pop(digest, None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def wake_all(self) -> None:
        for digest in list(self._waiters):
            self.wake(digest)

    async def sleep(self, digest: str, seconds: float) -> None:
        """Sleep up to ``seconds``, less if ``digest`` is woken."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(digest, set())
        waiters.add(fut)
        try:
            async with asyncio.timeout(seconds):
                await fut
        except TimeoutError:
            pass
        finally:
            waiters.discard(fut)
            if not waiters and self._waiters.get(digest) is waiters:
                del self._waiters[digest]


async def wait_settled(
    acquire: Acquire,
    wakeups: Wakeups,
    digest: str,
    holder: str,
    token: str,
    lease_ms: int,
    deadline: float,
    clock_ms: Callable[[], int],
) -> Lookup:
    loop = asyncio.get_running_loop()
    delay = POLL_FIRST_S
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError
        await wakeups.sleep(digest, min(delay, remaining))
        delay = min(delay * 2, POLL_MAX_S)
        look = await acquire(digest, token, lease_ms, clock_ms(), holder)
        if look.kind != HELD:
            return look
        holder = look.holder
