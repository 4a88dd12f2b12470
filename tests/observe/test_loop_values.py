"""Lock-free metric values (``observe.metrics.LoopValue``): same exposition, exact counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.observe.metrics import LATENCY_BUCKETS, LoopValue, Metrics, unlock


def _pair() -> tuple[CollectorRegistry, CollectorRegistry]:
    return CollectorRegistry(), CollectorRegistry()


def _samples(registry: CollectorRegistry) -> list[str]:
    """The exposition without ``*_created`` lines (creation times differ by nature)."""
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_unlocked_children_expose_exactly_what_locked_ones_do() -> None:
    locked, unlocked = _pair()
    made = []
    for registry in (locked, unlocked):
        counter = Counter("c_total", "c", ("route",), registry=registry)
        hist = Histogram("h_seconds", "h", ("route",), buckets=LATENCY_BUCKETS, registry=registry)
        made.append((counter, hist))
    (c1, h1), (c2, h2) = made
    fast_counter, fast_hist = unlock(c2.labels("/rtbs.json")), unlock(h2.labels("/rtbs.json"))
    assert type(fast_counter._value) is LoopValue
    assert all(type(b) is LoopValue for b in fast_hist._buckets)
    for i in range(10_000):
        c1.labels("/rtbs.json").inc()
        fast_counter.inc()
        seconds = (i % 97) / 10_000
        h1.labels("/rtbs.json").observe(seconds)
        fast_hist.observe(seconds)
    assert _samples(locked) == _samples(unlocked)
    assert b'c_total{route="/rtbs.json"} 10000.0' in generate_latest(unlocked)


def test_bound_children_are_the_ones_labels_returns() -> None:
    metrics = Metrics()
    child = metrics.bind(metrics.http_requests, "/rtbs.json", "POST", "200")
    assert metrics.http_requests.labels("/rtbs.json", "POST", "200") is child
    child.inc(3)
    text = metrics.render().decode()
    assert 'gateway_http_requests_total{method="POST",route="/rtbs.json",status="200"} 3.0' in text
