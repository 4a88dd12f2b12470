"""Rolling per-route statistics behind ``GET /stats``: the last 10 s and 60 s at a glance.

Prometheus answers "what was p99 over the last hour, across pods"; ``/stats`` answers
"what is this process doing right now" for a person with curl or a load-test script,
without a Prometheus server. It must be cheap enough to leave on, so nothing keeps a list
of samples: each route has a ring of 60 one-second slots, and each slot holds counts in
fixed log-spaced latency buckets (a quarter-octave apart, so any quantile is resolved to
within 19 %), a max, status classes and shield results. Recording is a bisect and a few
increments; a snapshot adds up at most 60 slots per route.

The request being served is visible to code below the middleware through
:data:`current_request`, so the upstream client's timing lands in the same route's record
(per-route upstream p99) and log lines carry the request id, with no extra arguments.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

_encoder = msgspec.json.Encoder()

WINDOWS_S = (10, 60)
RING_S = 60

# Upper bucket edges in seconds: 0.1 ms * 2^(i/4), up to just past 60 s; one overflow bucket.
EDGES: tuple[float, ...] = tuple(0.0001 * 2 ** (i / 4) for i in range(78))
_N = len(EDGES) + 1

SHIELD_RESULTS = ("hit", "miss", "coalesced", "error", "bypass")
_SHIELD_INDEX = {name: i for i, name in enumerate(SHIELD_RESULTS)}


class RequestContext:
    """What the middleware knows about the request in flight; filled in from below."""

    __slots__ = ("request_id", "upstream_seconds")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.upstream_seconds: float | None = None

    def add_upstream(self, seconds: float) -> None:
        previous = self.upstream_seconds
        self.upstream_seconds = seconds if previous is None else previous + seconds


current_request: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)


class _Slot:
    """One second of one route."""

    __slots__ = (
        "client_errors",
        "count",
        "errors",
        "hist",
        "max",
        "second",
        "shield",
        "up_count",
        "up_hist",
        "up_max",
    )

    def __init__(self) -> None:
        self.second = -1
        self.count = 0
        self.errors = 0
        self.client_errors = 0
        self.max = 0.0
        self.hist = [0] * _N
        self.shield = [0] * len(SHIELD_RESULTS)
        self.up_count = 0
        self.up_max = 0.0
        self.up_hist = [0] * _N

    def reset(self, second: int) -> None:
        self.second = second
        self.count = self.errors = self.client_errors = self.up_count = 0
        self.max = self.up_max = 0.0
        hist, up, shield = self.hist, self.up_hist, self.shield
        for i in range(_N):
            hist[i] = 0
            up[i] = 0
        for i in range(len(shield)):
            shield[i] = 0


class RollingStats:
    """Per-route rings of one-second slots; ``record`` on the hot path, ``snapshot`` on read."""

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
            slot.up_hist[bisect_left(EDGES, upstream_seconds)] += 1
            if upstream_seconds > slot.up_max:
                slot.up_max = upstream_seconds

    def snapshot(self) -> dict[str, Any]:
        """Per route and window: rps, latency quantiles (ms), error and shield ratios."""
        now = self._clock()
        second = int(now)
        uptime = max(now - self._started, 1e-3)
        windows: dict[str, Any] = {}
        for window in WINDOWS_S:
            # The window is the current (partial) second plus the window-1 before it;
            # rates divide by the time that window actually covers, so neither a fresh
            # process nor a half-finished second dilutes them.
            span = min(window - 1 + (now - second), uptime)
            routes = {}
            for route, ring in sorted(self._rings.items()):
                slots = [s for s in ring if second - window < s.second <= second]
                summary = _summarise(slots, span)
                if summary is not None:
                    routes[route] = summary
            windows[f"{window}s"] = routes
        return {"uptime_s": round(uptime, 3), "windows": windows}


def _summarise(slots: Iterable[_Slot], span: float) -> dict[str, Any] | None:
    count = errors = client_errors = up_count = 0
    peak = up_peak = 0.0
    hist = [0] * _N
    up_hist = [0] * _N
    shield = [0] * len(SHIELD_RESULTS)
    for slot in slots:
        if not slot.count:
            continue
        count += slot.count
        errors += slot.errors
        client_errors += slot.client_errors
        peak = max(peak, slot.max)
        for i, n in enumerate(slot.hist):
            if n:
                hist[i] += n
        for i, n in enumerate(slot.shield):
            shield[i] += n
        if slot.up_count:
            up_count += slot.up_count
            up_peak = max(up_peak, slot.up_max)
            for i, n in enumerate(slot.up_hist):
                if n:
                    up_hist[i] += n
    if not count:
        return None
    lookups = sum(shield)
    served = shield[_SHIELD_INDEX["hit"]] + shield[_SHIELD_INDEX["coalesced"]]
    return {
        "requests": count,
        "rps": round(count / span, 3),
        "latency_ms": {
            "p50": _ms(quantile(hist, count, 0.50, peak)),
            "p90": _ms(quantile(hist, count, 0.90, peak)),
            "p99": _ms(quantile(hist, count, 0.99, peak)),
            "max": _ms(peak),
        },
        "error_ratio": round(errors / count, 6),
        "client_error_ratio": round(client_errors / count, 6),
        "shield": {
            "lookups": lookups,
            "hit_ratio": round(served / lookups, 6) if lookups else None,
            **{name: shield[i] for i, name in enumerate(SHIELD_RESULTS)},
        },
        "upstream": {
            "requests": up_count,
            "p99_ms": _ms(quantile(up_hist, up_count, 0.99, up_peak)) if up_count else None,
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


async def stats_endpoint(request: Request) -> Response:
    """``GET /stats``: this process's rolling statistics as JSON."""
    snapshot = request.state.res.metrics.stats.snapshot()
    snapshot["pid"] = os.getpid()
    return Response(_encoder.encode(snapshot), media_type="application/json")
