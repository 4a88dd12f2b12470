"""Rolling per-route statistics behind ``GET /stats``: the last 10 s and 60 s at a glance.

Prometheus answers "what was p99 over the last hour, across pods"; ``/stats`` answers
"what is this replica doing right now" for a person with curl, a load-test script or the
``/status`` page, without a Prometheus server. It must be cheap enough to leave on, so
nothing keeps a list of samples: each route has a ring of 60 one-second slots, and each
slot holds counts in fixed log-spaced latency buckets (a quarter-octave apart, so any
quantile is resolved to within 19 %), a max, status classes and shield results. Recording
is a bisect and a few increments; a snapshot adds up at most 60 slots per route (per
worker, with ``--workers N``: gateway/observe/stats_share.py), and also keeps them apart as
per-second series for the status page's charts.

The request being served is visible to code below the middleware through
:data:`current_request`, so the upstream client's timing lands in the same route's record
(per-route upstream p99) and log lines carry the request id, with no extra arguments.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from gateway.observe.results import COALESCED, HIT, RESULTS

WINDOWS_S = (10, 60)
RING_S = 60

# Upper bucket edges in seconds: 0.1 ms * 2^(i/4), up to just past 60 s; one overflow bucket.
EDGES: tuple[float, ...] = tuple(0.0001 * 2 ** (i / 4) for i in range(78))
_N = len(EDGES) + 1

_SHIELD_INDEX = {name: i for i, name in enumerate(RESULTS)}


class RequestContext:
    """What the middleware knows about the request in flight; filled in from below."""

    __slots__ = ("request_id", "upstream_errors", "upstream_seconds")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.upstream_seconds: float | None = None
        self.upstream_errors = 0

    def add_upstream(self, seconds: float, failed: bool = False) -> None:
        previous = self.upstream_seconds
        self.upstream_seconds = seconds if previous is None else previous + seconds
        if failed:
            self.upstream_errors += 1


current_request: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)


class _Slot:
    """One second of one route (of one worker, or added up over a replica's workers)."""

    __slots__ = (
        "client_errors",
        "count",
        "errors",
        "hist",
        "max",
        "second",
        "shield",
        "up_count",
        "up_errors",
        "up_hist",
        "up_max",
    )

    def __init__(self, second: int = -1) -> None:
        self.second = second
        self.count = 0
        self.errors = 0
        self.client_errors = 0
        self.max = 0.0
        self.hist = [0] * _N
        self.shield = [0] * len(RESULTS)
        self.up_count = 0
        self.up_errors = 0
        self.up_max = 0.0
        self.up_hist = [0] * _N

    def reset(self, second: int) -> None:
        self.second = second
        self.count = self.errors = self.client_errors = self.up_count = self.up_errors = 0
        self.max = self.up_max = 0.0
        hist, up, shield = self.hist, self.up_hist, self.shield
        for i in range(_N):
            hist[i] = 0
            up[i] = 0
        for i in range(len(shield)):
            shield[i] = 0

    def add(self, other: _Slot) -> None:
        self.count += other.count
        self.errors += other.errors
        self.client_errors += other.client_errors
        self.max = max(self.max, other.max)
        self.up_count += other.up_count
        self.up_errors += other.up_errors
        self.up_max = max(self.up_max, other.up_max)
        for mine, theirs in ((self.hist, other.hist), (self.up_hist, other.up_hist)):
            for i, n in enumerate(theirs):
                if n:
                    mine[i] += n
        for i, n in enumerate(other.shield):
            self.shield[i] += n

    def to_wire(self) -> list[Any]:
        """A compact JSON-able form: histograms as sparse ``[index, count]`` pairs."""
        return [
            self.second,
            self.count,
            self.errors,
            self.client_errors,
            self.max,
            [[i, n] for i, n in enumerate(self.hist) if n],
            self.shield,
            self.up_count,
            self.up_errors,
            self.up_max,
            [[i, n] for i, n in enumerate(self.up_hist) if n],
        ]

    @classmethod
    def from_wire(cls, wire: list[Any]) -> _Slot:
        slot = cls(int(wire[0]))
        slot.count, slot.errors, slot.client_errors = int(wire[1]), int(wire[2]), int(wire[3])
        slot.max = float(wire[4])
        for i, n in wire[5]:
            slot.hist[i] = int(n)
        slot.shield = [int(n) for n in wire[6]][: len(RESULTS)]
        slot.shield += [0] * (len(RESULTS) - len(slot.shield))
        slot.up_count, slot.up_errors, slot.up_max = int(wire[7]), int(wire[8]), float(wire[9])
        for i, n in wire[10]:
            slot.up_hist[i] = int(n)
        return slot


class RollingStats:
    """Per-route rings of one-second slots; ``record`` on the hot path, ``snapshot`` on read.

    ``export`` hands this worker's recent slots to the others (gateway/observe/stats_share.py);
    ``snapshot(peers)`` adds theirs in second by second, so with ``--workers N`` one
    answer covers the whole replica. Seconds are ``time.monotonic`` seconds, which on
    Linux are the same clock for every process on the host.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._rings: dict[str, list[_Slot]] = {}

    def record(
        self,
        route: str,
        status: int,
        seconds: float,
        shield: str | None = None,
        upstream_seconds: float | None = None,
        upstream_errors: int = 0,
    ) -> None:
        second = int(self._clock())
        ring = self._rings.get(route)
        if ring is None:
            ring = self._rings[route] = [_Slot() for _ in range(RING_S)]
        slot = ring[second % RING_S]
        if slot.second != second:
            slot.reset(second)
        slot.count += 1
        if status >= 500:
            slot.errors += 1
        elif status >= 400:
            slot.client_errors += 1
        slot.hist[bisect_left(EDGES, seconds)] += 1
        if seconds > slot.max:
            slot.max = seconds
        if shield is not None:
            index = _SHIELD_INDEX.get(shield)
            if index is not None:
                slot.shield[index] += 1
        if upstream_seconds is not None:
            slot.up_count += 1
            slot.up_errors += upstream_errors
            slot.up_hist[bisect_left(EDGES, upstream_seconds)] += 1
            if upstream_seconds > slot.up_max:
                slot.up_max = upstream_seconds

    def export(self) -> dict[str, Any]:
        """This worker's slots of the last ``RING_S`` seconds, for the other workers."""
        second = int(self._clock())
        return {
            "pid": os.getpid(),
            "started": self._started,
            "routes": {
                route: [s.to_wire() for s in ring if second - RING_S < s.second <= second]
                for route, ring in self._rings.items()
            },
        }

    def snapshot(self, peers: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """Per route and window: rps, latency quantiles (ms), error and shield ratios;
        per route and second over the last minute: requests, errors, p50 and p99.

        ``peers`` are other workers' :meth:`export` results, added to this one's.
        """
        now = self._clock()
        second = int(now)
        started = self._started
        merged: dict[str, dict[int, _Slot]] = {}

        def add(route: str, slot: _Slot) -> None:
            if not slot.count or not second - RING_S < slot.second <= second:
                return
            seconds = merged.setdefault(route, {})
            total = seconds.get(slot.second)
            if total is None:
                total = seconds[slot.second] = _Slot(slot.second)
            total.add(slot)

        for route, ring in self._rings.items():
            for slot in ring:
                add(route, slot)
        workers = 1
        for peer in peers:
            workers += 1
            started = min(started, float(peer.get("started", started)))
            for route, wires in peer.get("routes", {}).items():
                for wire in wires:
                    add(route, _Slot.from_wire(wire))
        uptime = max(now - started, 1e-3)
        windows: dict[str, Any] = {}
        for window in WINDOWS_S:
            # The window is the current (partial) second plus the window-1 before it;
            # rates divide by the time that window actually covers, so neither a fresh
            # process nor a half-finished second dilutes them.
            span = min(window - 1 + (now - second), uptime)
            routes = {}
            for route, seconds in sorted(merged.items()):
                slots = [s for t, s in seconds.items() if second - window < t]
                summary = _summarise(slots, span)
                if summary is not None:
                    routes[route] = summary
            windows[f"{window}s"] = routes
        return {
            "uptime_s": round(uptime, 3),
            "workers": workers,
            "windows": windows,
            "series": _series(merged, second),
        }


def _series(merged: Mapping[str, Mapping[int, _Slot]], second: int) -> dict[str, Any]:
    """Per route, one value per second, oldest first, ending with the current second."""
    routes: dict[str, Any] = {}
    for route, seconds in sorted(merged.items()):
        requests: list[int] = []
        errors: list[int] = []
        p50: list[float | None] = []
        p99: list[float | None] = []
        for t in range(second - RING_S + 1, second + 1):
            slot = seconds.get(t)
            if slot is None:
                requests.append(0)
                errors.append(0)
                p50.append(None)
                p99.append(None)
                continue
            requests.append(slot.count)
            errors.append(slot.errors)
            p50.append(_ms(quantile(slot.hist, slot.count, 0.50, slot.max)))
            p99.append(_ms(quantile(slot.hist, slot.count, 0.99, slot.max)))
        routes[route] = {"requests": requests, "errors": errors, "p50_ms": p50, "p99_ms": p99}
    return {"seconds": RING_S, "routes": routes}


def _summarise(slots: Iterable[_Slot], span: float) -> dict[str, Any] | None:
    total = _Slot()
    for slot in slots:
        total.add(slot)
    count, shield = total.count, total.shield
    if not count:
        return None
    lookups = sum(shield)
    served = shield[_SHIELD_INDEX[HIT]] + shield[_SHIELD_INDEX[COALESCED]]
    up_count, up_peak = total.up_count, total.up_max
    return {
        "requests": count,
        "rps": round(count / span, 3),
        "latency_ms": {
            "p50": _ms(quantile(total.hist, count, 0.50, total.max)),
            "p90": _ms(quantile(total.hist, count, 0.90, total.max)),
            "p99": _ms(quantile(total.hist, count, 0.99, total.max)),
            "max": _ms(total.max),
        },
        "status": {
            "ok": count - total.errors - total.client_errors,
            "4xx": total.client_errors,
            "5xx": total.errors,
        },
        "error_ratio": round(total.errors / count, 6),
        "client_error_ratio": round(total.client_errors / count, 6),
        "shield": {
            "lookups": lookups,
            "hit_ratio": round(served / lookups, 6) if lookups else None,
            **{name: shield[i] for i, name in enumerate(RESULTS)},
        },
        "upstream": {
            "requests": up_count,
            "errors": total.up_errors,
            "p99_ms": _ms(quantile(total.up_hist, up_count, 0.99, up_peak)) if up_count else None,
            "max_ms": _ms(up_peak) if up_count else None,
        },
    }


def quantile(hist: list[int], count: int, q: float, peak: float) -> float:
    """The q-quantile of a bucketed distribution, interpolated inside its bucket.

    Like PromQL's ``histogram_quantile``: find the bucket holding rank ``q * count`` and
    interpolate linearly between its edges; never above the largest value seen.
    """
    if count <= 0:
        return 0.0
    rank = q * count
    cumulative = 0
    for i, n in enumerate(hist):
        if not n:
            continue
        if cumulative + n >= rank:
            lower = EDGES[i - 1] if i > 0 else 0.0
            upper = EDGES[i] if i < len(EDGES) else peak
            value = lower + (upper - lower) * ((rank - cumulative) / n)
            return min(value, peak)
        cumulative += n
    return peak


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
