"""When to stop asking Redis for a moment, and when to ask again.

A blackholed Redis costs every call its full timeout; without a breaker every ping
would pay that. After ``failures`` consecutive failed calls the breaker opens: the shield
is bypassed (pings forwarded unshielded, counted ``bypass``) for ``open_s``. Then one
call is let through as a probe; success closes the breaker, failure opens it again. So
the shield resumes at most ``open_s`` (plus one call) after Redis returns, and while
Redis is away at most one ping per ``open_s`` pays a timeout.

Pure state with an injectable clock, so its timing is tested without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Breaker:
    def __init__(
        self,
        failures: int = 3,
        open_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = max(1, failures)
        self._open_s = open_s
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None
        self._probe_at: float | None = None

    @property
    def closed(self) -> bool:
        return self._open_until is None

    def allow(self) -> bool:
        """May this request use the store? (Also hands out the probe when it is due.)"""
        open_until = self._open_until
        if open_until is None:
            return True
        now = self._clock()
        if now < open_until:
            return False
        # One probe at a time; a probe that never reported back (its request was
        # cancelled) is replaced after another open period.
        if self._probe_at is not None and now < self._probe_at + self._open_s:
            return False
        self._probe_at = now
        return True

    def success(self) -> None:
        self._failures = 0
        self._open_until = None
        self._probe_at = None

    def failure(self) -> bool:
        """Record a failed call; ``True`` when this failure opened the breaker."""
        self._failures += 1
        was_closed = self._open_until is None
        if not was_closed or self._failures >= self._threshold:
            self._open_until = self._clock() + self._open_s
            self._probe_at = None
            return was_closed
        return False
