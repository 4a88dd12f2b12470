"""Every metric the gateway exports, on one registry owned by the app.

Label values are bounded enums only: ``route`` is a route template from the app's own
table (or ``unmatched``), ``status`` a status code, ``result``/``outcome`` fixed words.
Nothing here ever takes a caller, key, publisher or raw path. Buckets start at 0.5 ms so
a low-millisecond p99 can be resolved, and each SLO has a bucket edge exactly on it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Seconds. Edges at 2 ms (gateway-added p99 SLO), 25/50 ms (hit/forward p99 SLOs),
# 3 s (the default RTB deadline).
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.0,
    3.0,
    5.0,
    10.0,
)

SHIELD_RESULTS = ("hit", "miss", "coalesced", "error", "bypass")
UPSTREAMS = ("rtb", "core_api")

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The app's metric objects; one instance per app, so test apps never collide."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "gateway_http_requests_total",
            "HTTP requests answered by the gateway",
            ("route", "method", "status"),
            registry=r,
        )
        self.http_duration = Histogram(
            "gateway_http_request_duration_seconds",
            "Time from request start to the last byte of the answer",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            "gateway_upstream_request_duration_seconds",
            "Time spent on one upstream request",
            ("upstream", "outcome"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.shield_lookups = Counter(
            "gateway_shield_lookups_total",
            "Ping shield lookups by result",
            ("result",),
            registry=r,
        )
        for result in SHIELD_RESULTS:
            self.shield_lookups.labels(result)

    def observe_upstream(self, upstream: str):  # type: ignore[no-untyped-def]
        """A callback ``(outcome, seconds)`` for one upstream, children cached per outcome."""
        children: dict[str, object] = {}

        def observe(outcome: str, seconds: float) -> None:
            child = children.get(outcome)
            if child is None:
                child = children[outcome] = self.upstream_duration.labels(upstream, outcome)
            child.observe(seconds)  # type: ignore[attr-defined]

        return observe

    def render(self) -> bytes:
        return generate_latest(self.registry)
