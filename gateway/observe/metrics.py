"""Every metric the gateway exports, on one registry owned by the app.

Label values are bounded enums only: ``route`` is a route template from the app's own
table (or ``unmatched``), ``status`` a status code, ``result``/``outcome``/``command``
fixed words chosen in code. Nothing here ever takes a caller, key, publisher or raw path.
Buckets start at 0.5 ms so a low-millisecond p99 can be resolved, and each SLO has a
bucket edge exactly on it.

With ``--workers N`` each worker is its own process, so the server runs
prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set up by
``server.py``): every worker writes its values to memory-mapped files there and whichever
worker answers ``/metrics`` adds them all up. Gauges sum over live workers only
(``livesum``); the supervisor drops a dead worker's gauges. Values sampled from objects
(pool occupancy, shield store size) are read at scrape time in a single process, and
pushed once a second by each worker in multiprocess mode (see :meth:`Metrics.refresh`).

Cheap on the hot path: label children are bound once (:meth:`Metrics.bind`, at start-up
or the first time a label set is seen) and kept by the code that updates them, and in a
single process their values carry no lock (:class:`LoopValue`): a forwarded ping makes
about a dozen metric updates, and prometheus-client's per-value mutex was the larger part
of their cost. Values stay exact: every update still lands, on the loop's one thread.

Library versions: swaps prometheus-client's private value objects (``_value``,
``_sum``, ``_buckets``, ``values.MutexValue``/``ValueClass``).
``tests/observe/test_loop_values.py`` and ``test_workers.py`` cover 0.21.0 (floor)
to 0.26.0 (lock and newest, ``.ci/latest`` 2026-12-04); pyproject.toml allows
``>=0.21,<0.27``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import values as _prom_values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.values import MutexValue

from gateway import __version__
from gateway.observe import stats_share
from gateway.observe.results import RESULTS
from gateway.observe.stats import RollingStats, current_request

log = logging.getLogger("gateway")

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

# Why gateway/protect/ refused a request before it reached a handler or the upstream.
PROTECT_REASONS = (
    "forbidden_key",
    "rate_limited",
    "breaker_open",
    "overloaded",
    "uri_too_long",
    "headers_too_large",
    "request_timeout",
    "too_many_connections",
    "bad_request",
    "ops_shed",
    "send_timeout",
)

CONTENT_TYPE = CONTENT_TYPE_LATEST

Observer = Callable[[str, float], None]


class LoopValue:
    """prometheus-client's single-process value, without its lock.

    Every update of the gateway's metrics happens on the event loop's thread, and so
    does ``/metrics`` (``generate_latest`` in the endpoint), so the mutex guarded nothing
    and cost a lock round per update. Multiprocess values (mmap files) are left alone.
    """

    _multiprocess = False
    __slots__ = ("_exemplar", "_value")

    def __init__(self, value: float = 0.0, exemplar: Any = None) -> None:
        self._value = value
        self._exemplar = exemplar

    def inc(self, amount: float) -> None:
        self._value += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self._value = value

    def set_exemplar(self, exemplar: Any) -> None:
        self._exemplar = exemplar

    def get(self) -> float:
        return self._value

    def get_exemplar(self) -> Any:
        return self._exemplar


def _unlocked(value: Any) -> Any:
    if type(value) is MutexValue:
        return LoopValue(value.get(), value.get_exemplar())
    return value


def unlock(metric: Any) -> Any:
    """Swap the mutex values of a metric child (or unlabelled metric) for :class:`LoopValue`."""
    for name in ("_value", "_sum", "_count"):
        value = getattr(metric, name, None)
        if value is not None:
            setattr(metric, name, _unlocked(value))
    buckets = getattr(metric, "_buckets", None)
    if isinstance(buckets, list):
        metric._buckets = [_unlocked(b) for b in buckets]
    return metric


def multiprocess_active() -> bool:
    """Whether prometheus-client was imported with ``PROMETHEUS_MULTIPROC_DIR`` set."""
    return _prom_values.ValueClass is not _prom_values.MutexValue


class Metrics:
    """The app's metric objects; one instance per app, so test apps never collide."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        multiprocess_dir: str | None = None,
        version: str = __version__,
    ) -> None:
        if multiprocess_dir is not None and not multiprocess_active():
            raise RuntimeError(
                "PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is imported"
            )
        # ``*_created`` series double the series count and no dashboard reads them.
        disable_created_metrics()
        self.multiprocess_dir = multiprocess_dir
        self._pusher: asyncio.Task[None] | None = None
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.stats = RollingStats()
        self._sampled: list[tuple[Gauge, Callable[[], float]]] = []
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
        self.in_flight = Gauge(
            "gateway_http_requests_in_flight",
            "HTTP requests being served right now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.upstream_duration = Histogram(
            "gateway_upstream_request_duration_seconds",
            "Time spent on one upstream request",
            ("upstream", "outcome"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_connections = Gauge(
            "gateway_upstream_connections_in_use",
            "Connections currently lent out by an upstream client's pool",
            ("upstream",),
            registry=r,
            multiprocess_mode="livesum",
        )
        self.shield_lookups = Counter(
            "gateway_shield_lookups_total",
            "Ping shield lookups by result",
            ("result",),
            registry=r,
        )
        for result in RESULTS:
            unlock(self.shield_lookups.labels(result))
        self.shield_store_entries = Gauge(
            "gateway_shield_store_entries",
            "Answers held by the in-process shield store (or near-cache)",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.shield_store_evicted = Counter(
            "gateway_shield_store_evicted_total",
            "Live answers the in-process shield store dropped at its entry cap before expiry",
            registry=r,
        )
        self.shield_orphans_dropped = Counter(
            "gateway_shield_orphan_confirms_dropped_total",
            "Confirmations whose uuid index was lost, forgotten at the bound before a repeat",
            registry=r,
        )
        self.access_log_dropped = Counter(
            "gateway_access_log_dropped_total",
            "Access log lines dropped because the log reader was too slow (buffer full) "
            "or the log destination failed",
            registry=r,
        )
        self.redis_duration = Histogram(
            "gateway_redis_command_duration_seconds",
            "Time spent on one Redis command or script, by outcome",
            ("command", "outcome"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lookup_cache = Counter(
            "gateway_lookup_cache_lookups_total",
            "Core API lookup cache lookups by result",
            ("result",),
            registry=r,
        )
        for result in RESULTS:
            unlock(self.lookup_cache.labels(result))
        self.lookup_cache_bytes = Gauge(
            "gateway_lookup_cache_bytes",
            "Bytes held by the in-process lookup cache, as charged against "
            "GATEWAY_LOOKUP_CACHE_MAX_BYTES (0 with the Redis cache)",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.lookup_invalidation_failures = Counter(
            "gateway_lookup_cache_invalidation_failures_total",
            "Writes through the gateway whose shared cache invalidation failed (other "
            "replicas may serve that group's cached reads until their TTL)",
            registry=r,
        )
        self.protect_refusals = Counter(
            "gateway_protect_refusals_total",
            "Requests refused by a protection (allow-list, rate limit, breaker, load shedding, "
            "size and slow-client limits), by reason; none of them was forwarded",
            ("reason",),
            registry=r,
        )
        self._refusals = {r: unlock(self.protect_refusals.labels(r)) for r in PROTECT_REASONS}
        self.ops_answers = Counter(
            "gateway_ops_answers_total",
            "Answers of /stats and /metrics by source: built for the request, or the body "
            "kept from a recent build (while a flood spends the build budget)",
            ("route", "source"),
            registry=r,
        )
        self.rate_limit_fallbacks = Counter(
            "gateway_rate_limit_fallbacks_total",
            "Rate-limit checks answered in process because Redis failed or was being skipped",
            registry=r,
        )
        self.breaker_open = Gauge(
            "gateway_upstream_breaker_open",
            "1 while the upstream's circuit breaker is open (summed over workers)",
            ("upstream",),
            registry=r,
            multiprocess_mode="livesum",
        )
        # The ledger (gateway/ledger/): outcome codes are a fixed vocabulary, routes templates.
        self.outcomes = Counter(
            "gateway_outcomes_total",
            "Answers of the publisher routes by outcome code (the X-Outcome header)",
            ("route", "outcome"),
            registry=r,
        )
        self._outcome_children: dict[tuple[str, str], Any] = {}
        self.ledger_written = Counter(
            "gateway_ledger_events_written_total",
            "Ledger events written to the ledger store",
            registry=r,
        )
        self.ledger_dropped = Counter(
            "gateway_ledger_events_dropped_total",
            "Ledger events lost because the queue was full (or not flushed at shutdown)",
            registry=r,
        )
        self.ledger_write_failures = Counter(
            "gateway_ledger_write_failures_total",
            "Ledger batch writes that failed and were retried",
            registry=r,
        )
        self.ledger_rollups_evicted = Counter(
            "gateway_ledger_rollups_evicted_total",
            "In-process analytics rollup rows and reservation uuids evicted to stay bounded",
            registry=r,
        )
        self.ledger_queue_depth = Gauge(
            "gateway_ledger_queue_depth",
            "Ledger events waiting to be written",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.build_info = Gauge(
            "gateway_build_info",
            "Always 1; the version label says which build is running",
            ("version",),
            registry=r,
            multiprocess_mode="max",
        )
        self.build_info.labels(version).set(1)
        for unlabelled in (
            self.in_flight,
            self.shield_store_entries,
            self.shield_store_evicted,
            self.shield_orphans_dropped,
            self.rate_limit_fallbacks,
            self.ledger_written,
            self.ledger_dropped,
            self.ledger_write_failures,
            self.access_log_dropped,
            self.ledger_rollups_evicted,
        ):
            unlock(unlabelled)

    def bind(self, metric: Any, *labels: str) -> Any:
        """The child of ``metric`` for ``labels``, ready for the hot path (bind it once)."""
        return unlock(metric.labels(*labels))

    # -- callbacks for the code that does the work ---------------------------------------

    def observe_upstream(self, upstream: str) -> Observer:
        """A callback ``(outcome, seconds)`` for one upstream, children cached per outcome.

        Besides the histogram it charges the time to the request in flight, so ``/stats``
        can show upstream p99 per route.
        """
        children: dict[str, Any] = {}

        def observe(outcome: str, seconds: float) -> None:
            child = children.get(outcome)
            if child is None:
                child = children[outcome] = self.bind(self.upstream_duration, upstream, outcome)
            child.observe(seconds)
            ctx = current_request.get()
            if ctx is not None:
                ctx.add_upstream(seconds, outcome != "ok")

        return observe

    def observe_redis(self, command: str) -> Observer:
        """A callback ``(outcome, seconds)`` for one Redis command name (a fixed word)."""
        children: dict[str, Any] = {}

        def observe(outcome: str, seconds: float) -> None:
            child = children.get(outcome)
            if child is None:
                child = children[outcome] = self.bind(self.redis_duration, command, outcome)
            child.observe(seconds)

        return observe

    def protect_refusal(self, reason: str) -> None:
        """Count one refusal by gateway/protect/ (a reason from ``PROTECT_REASONS``)."""
        child = self._refusals.get(reason)
        if child is None:
            child = self._refusals[reason] = self.bind(self.protect_refusals, reason)
        child.inc()

    def ops_answer(self, route: str) -> Callable[[bool], None]:
        """A callback ``(built)`` counting the answers of one ops route by source."""
        built_child = self.bind(self.ops_answers, route, "built")
        kept_child = self.bind(self.ops_answers, route, "kept")

        def answered(built: bool) -> None:
            (built_child if built else kept_child).inc()

        return answered

    def outcome(self, route: str, outcome: str) -> None:
        """Count one publisher answer by its outcome code (gateway/ledger/outcomes.py)."""
        child = self._outcome_children.get((route, outcome))
        if child is None:
            child = self._outcome_children[route, outcome] = self.bind(
                self.outcomes, route, outcome
            )
        child.inc()

    def breaker_state(self, upstream: str) -> Callable[[bool], None]:
        """A callback ``(is_open)`` for one upstream's circuit breaker."""
        gauge = self.bind(self.breaker_open, upstream)
        gauge.set(0)

        def changed(is_open: bool) -> None:
            gauge.set(1 if is_open else 0)

        return changed

    # -- values sampled from objects at scrape time --------------------------------------

    def track(self, gauge: Gauge, read: Callable[[], float]) -> None:
        """Set ``gauge`` from ``read()`` whenever metrics are scraped (or pushed)."""
        self._sampled.append((gauge, read))

    def track_upstream_pool(self, upstream: str, in_use: Callable[[], float]) -> None:
        """Pool occupancy of an upstream client, e.g. ``Forwarder.connections_in_use``."""
        self.track(self.upstream_connections.labels(upstream), in_use)  # type: ignore[arg-type]

    def track_shield_store_size(self, size: Callable[[], float]) -> None:
        """Entries held by the in-process shield store; or call ``shield_store_entries.set``."""
        self.track(self.shield_store_entries, size)

    def refresh(self) -> None:
        """Read every tracked value now; a failing reader leaves its gauge as it was."""
        for gauge, read in self._sampled:
            try:
                gauge.set(read())
            except Exception:  # noqa: S112 - a broken reader must not break /metrics
                continue

    async def start(self, interval_s: float = 1.0) -> None:
        """In multiprocess mode, push sampled values every ``interval_s`` (others can't read
        this worker's objects at scrape time), and share this worker's ``/stats`` rings
        (gateway/observe/stats_share.py)."""
        if self.multiprocess_dir is not None and self._pusher is None:
            self._pusher = asyncio.create_task(self._push(interval_s), name="metrics-push")

    async def close(self) -> None:
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
            self._pusher = None
        if self.multiprocess_dir is not None:
            stats_share.remove(self.multiprocess_dir, os.getpid())

    async def _push(self, interval_s: float) -> None:
        directory = self.multiprocess_dir
        assert directory is not None
        while True:
            self.refresh()
            try:
                data = stats_share.encode(self.stats)
                await asyncio.to_thread(stats_share.write, directory, data)
            except OSError as exc:  # a full or vanished directory must not stop the pushes
                log.warning("could not share /stats", extra={"error": str(exc)})
            await asyncio.sleep(interval_s)

    def stats_snapshot(self) -> dict[str, Any]:
        """``RollingStats.snapshot`` over every live worker of this replica."""
        if self.multiprocess_dir is None:
            return self.stats.snapshot()
        return self.stats.snapshot(stats_share.read_peers(self.multiprocess_dir))

    def render(self) -> bytes:
        self.refresh()
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess_dir)
        return generate_latest(merged)
