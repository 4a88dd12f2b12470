"""Circuit breaker and in-flight cap for one upstream.

Why: when Retreaver's RTB endpoint is down or drowning, waiting out the full deadline on
every ping only piles up sockets, memory and publisher timeouts, and adds load to an
upstream that is already failing. After ``failures`` consecutive failures (timeouts,
connection errors, 5xx answers) the breaker *opens*: pings that would be forwarded get a
fast ``503 upstream_unavailable`` with ``Retry-After``; shielded answers still flow.

Half-open: every ``open_s`` one request is let through as a probe, even while an earlier
probe is still out (so an upstream that recovers while a probe hangs on a dead
connection is noticed within ``open_s``, not after the probe's own deadline). Any
success closes the breaker; a failed probe changes nothing: the next probe is already
due ``open_s`` after the last one went out (pushing it back from the failure would let
a probe that hung for the whole deadline delay recovery by as much again).

The in-flight cap (``max_in_flight``, the size of the connection pool) refuses a forward
at once with ``503 overloaded`` instead of letting it queue for a pooled connection: a
slow upstream then costs at most that many sockets and requests' worth of memory.

States as a picture::

    closed ──(failures in a row)──▶ open ──(open_s passed: one probe)──▶ probing
      ▲                               ▲                                    │
      └──────────(any success)────────┴──(probe failed: next one open_s    ┘
                                           after this one went out)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.errors import Overloaded, UpstreamUnavailable
from gateway.protect.ratelimit import retry_after_header

CLOSED = "closed"
OPEN = "open"


class CircuitBreaker:
    """Counts outcomes of one upstream and decides whether the next call may go out."""

    def __init__(
        self,
        upstream: str,
        *,
        failures: int = 20,
        open_s: float = 1.0,
        max_in_flight: int = 512,
        clock: Callable[[], float] = time.monotonic,
        on_refusal: Callable[[str], None] | None = None,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.threshold = failures
        self.open_s = open_s
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._clock = clock
        self._on_refusal = on_refusal
        self._on_state = on_state
        self._consecutive = 0
        self._open = False
        self._next_probe = 0.0

    @property
    def state(self) -> str:
        return OPEN if self._open else CLOSED

    def acquire(self) -> bool:
        """Admit one call or raise a 503; returns whether the call is a half-open probe."""
        if self.in_flight >= self.max_in_flight:
            self._refuse("overloaded")
            raise Overloaded(
                f"too many requests in flight to the {self.upstream} upstream",
                headers={"Retry-After": "1"},
            )
        probe = False
        if self._open:
            now = self._clock()
            if now < self._next_probe:
                self._refuse("breaker_open")
                raise UpstreamUnavailable(
                    f"the {self.upstream} upstream is failing; not forwarding for now",
                    headers={"Retry-After": retry_after_header(self._next_probe - now)},
                )
            self._next_probe = now + self.open_s
            probe = True
        self.in_flight += 1
        return probe

    def release(self, ok: bool | None, probe: bool) -> None:
        """Record the outcome of a call admitted by :meth:`acquire`.

        ``ok=None`` is a call that ended without a verdict on the upstream (the client
        went away and the call was cancelled): it frees its slot and counts for nothing.
        """
        self.in_flight -= 1
        if ok is None:
            return
        if ok:
            self._consecutive = 0
            if self._open:
                self._open = False
                if self._on_state is not None:
                    self._on_state(False)
            return
        self._consecutive += 1
        if self._open:
            return
        if self.threshold and self._consecutive >= self.threshold:
            self._open = True
            self._next_probe = self._clock() + self.open_s
            if self._on_state is not None:
                self._on_state(True)

    def _refuse(self, reason: str) -> None:
        if self._on_refusal is not None:
            self._on_refusal(reason)
