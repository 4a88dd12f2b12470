"""Properties of the GCRA limiter, for any arrival pattern hypothesis can think of."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protect.ratelimit import MemoryBuckets
from gateway.protect.rules import Rate


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


rates = st.builds(
    Rate,
    count=st.integers(1, 50),
    period_s=st.sampled_from([1.0, 60.0]),
    burst=st.integers(1, 20),
)
gaps = st.lists(st.floats(0, 2.0, allow_nan=False), min_size=1, max_size=200)


@settings(max_examples=300, deadline=None)
@given(rate=rates, gaps=gaps)
def test_never_more_than_burst_plus_rate_in_any_window(rate: Rate, gaps: list[float]) -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock=clock)
    allowed: list[float] = []
    for gap in gaps:
        clock.now += gap
        if buckets.check("b", rate) == 0.0:
            allowed.append(clock.now)
    for i, start in enumerate(allowed):
        for j in range(i, len(allowed)):
            window = allowed[j] - start
            # j - i + 1 pings allowed within `window` seconds
            assert j - i + 1 <= rate.burst + window / rate.interval_s + 1e-6


@settings(max_examples=300, deadline=None)
@given(rate=rates, gaps=gaps)
def test_a_refusal_names_a_wait_after_which_the_ping_passes(rate: Rate, gaps: list[float]) -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock=clock)
    for gap in gaps:
        clock.now += gap
        wait = buckets.check("b", rate)
        if wait > 0:
            assert wait <= rate.tolerance_s + rate.interval_s
            clock.now += wait
            assert buckets.check("b", rate) == 0.0
