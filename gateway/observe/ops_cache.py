"""The bodies of ``/stats`` and ``/metrics``: built at most once per interval under a flood.

Both are built per request from every worker's state (``/stats`` ~2.4 ms of CPU, a
``/metrics`` render ~3.5 ms), on the same event loop that answers pings, and neither
needs credentials. Sixty connections asking for them back to back kept the loop busy
building and moved the ping p50 from ~1 ms to ~200 ms. So a body is kept, and a request
gets a freshly built one only while the build budget allows: ``burst`` builds back to
back, refilled at one per ``interval_s`` (the generic cell rate algorithm the rate limits
use). Past that, every request is answered the last body, at most ``interval_s`` plus
the burst's span old.

Why a budget and not a plain "at most once per interval": a person with curl, a
Prometheus scrape every 15 s, a status page polling once a second, or a test that reads
the counters right after making a request all see numbers that include what they just
did; only a flood is answered from the kept body.

The build is synchronous and runs on the loop (the values it reads are the loop's, with
no lock), so concurrent requests never build twice: one that arrives while a build runs
is answered after it, from the body it made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

# Fresh builds allowed back to back before a flood is answered from the kept body: enough
# for a person, a scraper and a status page together; ~15 ms of CPU per route at most
# (a burst is one block of loop time: the flood test saw a larger one in the ping p99).
FRESH_BUILDS = 5


class BuildBudget:
    """Whether a fresh build is allowed now: ``burst`` back to back, one per ``interval_s``."""

    def __init__(
        self, interval_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self._slack = interval_s * (burst - 1)
        self._clock = clock
        self._tat = float("-inf")  # theoretical arrival time of the next allowed build

    def take(self) -> bool:
        """True (and spent) when a build may run now."""
        now = self._clock()
        tat = max(self._tat, now)
        if tat - now > self._slack:
            return False
        self._tat = tat + self.interval_s
        return True

    def spend(self) -> None:
        """Count a build that had to run whatever the budget (nothing kept to answer)."""
        self._tat = max(self._tat, self._clock()) + self.interval_s


class CachedBody:
    """``get(variant)`` returns ``build()``'s bytes, rebuilt only as the budget allows.

    ``variant`` names what the body depends on besides time (``/stats`` shows whether
    the replica is draining): a different variant is always built at once.
    ``on_answer(built)`` counts each answer as built or served from the kept body.
    """

    def __init__(
        self,
        build: Callable[[], bytes],
        budget: BuildBudget,
        on_answer: Callable[[bool], None] | None = None,
    ) -> None:
        self._build = build
        self._budget = budget
        self._on_answer = on_answer
        self._body: bytes | None = None
        self._variant: Hashable = None

    def get(self, variant: Hashable = None) -> bytes:
        body = self._body
        if body is None or variant != self._variant:
            self._budget.spend()
            built = True
        else:
            built = self._budget.take()
        if built:
            body = self._body = self._build()
            self._variant = variant
        if self._on_answer is not None:
            self._on_answer(built)
        assert body is not None
        return body
