"""The breaker that skips a failing Redis, on a controllable clock."""

from __future__ import annotations

from gateway.wire.redis import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    b = Breaker(failures=3, open_s=1.0, clock=clock)
    assert not b.failure()
    assert not b.failure()
    b.success()  # a success in between resets the count
    assert not b.failure()
    assert not b.failure()
    assert b.allow()
    assert b.failure()  # the third in a row opens it
    assert not b.closed
    assert not b.allow()


def test_one_probe_after_open_period_then_closes_on_success() -> None:
    clock = Clock()
    b = Breaker(failures=1, open_s=1.0, clock=clock)
    b.failure()
    clock.now += 0.999
    assert not b.allow()
    clock.now += 0.001
    assert b.allow()  # the probe
    assert not b.allow()  # only one at a time
    b.success()
    assert b.closed
    assert b.allow()


def test_failed_probe_reopens_for_another_period() -> None:
    clock = Clock()
    b = Breaker(failures=1, open_s=1.0, clock=clock)
    b.failure()
    clock.now += 1.0
    assert b.allow()
    assert not b.failure()  # already open: not a new opening
    clock.now += 0.5
    assert not b.allow()
    clock.now += 0.5
    assert b.allow()


def test_lost_probe_is_replaced() -> None:
    clock = Clock()
    b = Breaker(failures=1, open_s=1.0, clock=clock)
    b.failure()
    clock.now += 1.0
    assert b.allow()  # this probe's request never reports back
    clock.now += 0.9
    assert not b.allow()
    clock.now += 0.1
    assert b.allow()


def test_shield_resumes_within_one_open_period_of_recovery() -> None:
    # Redis fails for a while, then answers again at `back`: the first request allowed
    # after `back` succeeds and closes the breaker; it is allowed at most open_s later.
    clock = Clock()
    b = Breaker(failures=3, open_s=1.0, clock=clock)
    back = clock.now + 7.3
    while True:
        if b.allow():
            if clock.now >= back:
                b.success()
                break
            b.failure()
        clock.now += 0.01
    assert b.closed
    assert clock.now - back <= 1.0 + 0.011
