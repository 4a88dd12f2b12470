"""Pacing ``/stats`` and ``/metrics``: a flood of them waits its turn, off the CPU.

Their bodies are kept between builds (gateway/observe/ops_cache.py), but each answer still costs
the loop a request's parsing, routing, logging and a body of tens of KB, and a client in
a loop asks again the moment it is answered: sixty such connections keep one core busy
and every ping queues behind them. Refusing faster does not help (a refused client asks
again at once); making it wait does, because a waiting request costs a timer and no CPU.

So these routes are admitted at ``rate`` per second (bursts of ``rate``), the same cell
rate algorithm as the rate limits. A request over the rate waits for its slot, up to
``max_waiting`` of them at a time; one more is shed: ``503`` with ``Retry-After: 1``,
sent after ``shed_delay_s`` (1 s), as Retry-After asks. The delay is what makes shedding
work against a client that does not honour Retry-After: answered at once, the sixty
connections of the flood above got ~8,000 refusals a second and the ping p50 still rose
~6x; held for a second, each connection costs at most one cheap answer a second (their
number is bounded by ``GATEWAY_MAX_CONNECTIONS``). Pings never wait here, and the health
probes (``/healthz``, ``/readyz``) are not paced: under a flood of ops requests they are
what keeps a replica alive and in service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class OpsPacer:
    """``await admit()``: True once the request may be served, False to shed it."""

    def __init__(
        self,
        rate: float,
        max_waiting: int,
        *,
        shed_delay_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = 1.0 / rate
        self.shed_delay_s = shed_delay_s
        self._slack = self.interval_s * (max(1, round(rate)) - 1)
        self.max_waiting = max_waiting
        self.waiting = 0
        self._clock = clock
        self._tat = float("-inf")

    async def admit(self) -> bool:
        now = self._clock()
        tat = max(self._tat, now)
        wait = tat - now - self._slack
        if wait > 0 and self.waiting >= self.max_waiting:
            if self.shed_delay_s > 0:
                await asyncio.sleep(self.shed_delay_s)
            return False
        self._tat = tat + self.interval_s  # the slot is this request's, waiting or not
        if wait <= 0:
            return True
        self.waiting += 1
        try:
            await asyncio.sleep(wait)
        finally:
            self.waiting -= 1
        return True
