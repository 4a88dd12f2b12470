"""RollingStats: windows, rates, quantiles and ratios, on a clock the test moves."""

from __future__ import annotations

import msgspec
import pytest

from gateway.observe.stats import EDGES, RollingStats, quantile


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_quantiles_fall_within_a_quarter_octave_of_the_truth() -> None:
    clock = Clock()
    stats = RollingStats(clock)
    clock.now += 30  # not a fresh process: windows span their full length
    values = [0.001 * (i + 1) for i in range(1000)]  # 1 ms .. 1000 ms, uniform
    for v in values:
        stats.record("/rtbs.json", 200, v)
    lat = stats.snapshot()["windows"]["10s"]["/rtbs.json"]["latency_ms"]
    for name, truth in (("p50", 500.0), ("p90", 900.0), ("p99", 990.0)):
        assert truth / 2**0.25 <= lat[name] <= truth * 2**0.25, (name, lat[name])
    assert lat["max"] == 1000.0


def test_rates_ratios_and_windows() -> None:
    clock = Clock(1000.0)
    stats = RollingStats(clock)
    clock.now = 1100.5
    for status, shield in ((200, "hit"), (200, "miss"), (200, "coalesced"), (502, "miss")):
        stats.record("/rtbs.json", status, 0.004, shield, 0.003 if shield == "miss" else None)
    stats.record("/rtbs.json", 422, 0.0005)
    clock.now = 1130.5  # 30 s later: only the 60 s window still holds them
    stats.record("/healthz", 200, 0.0002)
    snap = stats.snapshot()
    assert "/rtbs.json" not in snap["windows"]["10s"]
    ping = snap["windows"]["60s"]["/rtbs.json"]
    assert ping["requests"] == 5
    assert ping["rps"] == pytest.approx(5 / 59.5, rel=1e-3)
    assert ping["error_ratio"] == pytest.approx(0.2)
    assert ping["client_error_ratio"] == pytest.approx(0.2)
    assert ping["shield"]["lookups"] == 4
    assert ping["shield"]["hit_ratio"] == pytest.approx(0.5)  # hit + coalesced of 4
    assert ping["upstream"]["requests"] == 2
    assert 3.0 / 2**0.25 <= ping["upstream"]["p99_ms"] <= 3.0
    health = snap["windows"]["10s"]["/healthz"]
    assert health["requests"] == 1
    assert health["shield"]["hit_ratio"] is None
    clock.now = 1200.0  # a minute of silence forgets everything
    assert stats.snapshot()["windows"] == {"10s": {}, "60s": {}}


def test_a_slot_is_reused_for_a_later_second() -> None:
    clock = Clock(0.0)
    stats = RollingStats(clock)
    clock.now = 100.2
    stats.record("/r", 200, 0.01)
    clock.now = 160.2  # same slot (100 % 60 == 160 % 60), one minute later
    stats.record("/r", 200, 0.02)
    window = stats.snapshot()["windows"]["60s"]["/r"]
    assert window["requests"] == 1
    assert window["latency_ms"]["max"] == 20.0


def test_young_process_rates_use_its_uptime() -> None:
    clock = Clock(50.0)
    stats = RollingStats(clock)
    clock.now = 52.0
    for _ in range(20):
        stats.record("/r", 200, 0.001)
    assert stats.snapshot()["windows"]["60s"]["/r"]["rps"] == pytest.approx(10.0)


def test_quantile_of_an_empty_histogram_is_zero() -> None:
    assert quantile([0] * (len(EDGES) + 1), 0, 0.99, 0.0) == 0.0


def test_values_past_the_last_edge_use_the_max() -> None:
    clock = Clock()
    stats = RollingStats(clock)
    stats.record("/r", 200, 120.0)
    latency = stats.snapshot()["windows"]["10s"]["/r"]["latency_ms"]
    assert EDGES[-1] * 1000 < latency["p99"] <= latency["max"] == 120000.0


def test_series_has_one_value_a_second_ending_now() -> None:
    clock = Clock(1000.0)
    stats = RollingStats(clock)
    clock.now = 1100.3
    stats.record("/r", 200, 0.004)
    stats.record("/r", 502, 0.004)
    clock.now = 1102.7
    stats.record("/r", 200, 0.001)
    series = stats.snapshot()["series"]["routes"]["/r"]
    assert len(series["requests"]) == 60
    assert series["requests"][-3:] == [2, 0, 1]
    assert series["errors"][-3:] == [1, 0, 0]
    assert series["p50_ms"][-2] is None
    assert series["p99_ms"][-1] == pytest.approx(1.0, rel=0.2)
    assert sum(series["requests"]) == 3


def test_peers_exports_add_up_second_by_second() -> None:
    """Two workers on one clock: the merged snapshot is as if one process saw it all."""
    clock = Clock(1000.0)
    mine, theirs, both = RollingStats(clock), RollingStats(clock), RollingStats(clock)
    clock.now = 1030.5
    for i in range(30):
        stats = mine if i % 3 else theirs
        status, shield = (502, "error") if i % 10 == 0 else (200, "miss")
        for s in (stats, both):
            s.record("/rtbs.json", status, 0.001 * (i + 1), shield, 0.0005, int(status >= 500))
        if i % 7 == 0:
            clock.now += 1
    theirs.record("/readyz", 200, 0.0002)
    both.record("/readyz", 200, 0.0002)
    wire = msgspec.json.decode(msgspec.json.encode(theirs.export()))  # through JSON, as shared
    merged = mine.snapshot([wire])
    alone = both.snapshot()
    assert merged["workers"] == 2
    assert alone["workers"] == 1
    assert merged["windows"] == alone["windows"]
    assert merged["series"] == alone["series"]
    assert merged["windows"]["60s"]["/rtbs.json"]["upstream"]["errors"] == 3
    assert merged["windows"]["60s"]["/rtbs.json"]["status"] == {"ok": 27, "4xx": 0, "5xx": 3}


def test_a_peers_old_seconds_are_left_out() -> None:
    clock = Clock(1000.0)
    mine, theirs = RollingStats(clock), RollingStats(clock)
    theirs.record("/r", 200, 0.001)
    wire = theirs.export()
    clock.now = 1061.0  # their second is now more than a minute old
    mine.record("/r", 200, 0.001)
    assert mine.snapshot([wire])["windows"]["60s"]["/r"]["requests"] == 1
