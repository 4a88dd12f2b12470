"""``GET /stats`` (JSON) and ``GET /status`` (a live page for people), for the whole replica.

``/stats`` adds up every worker's rolling rings (gateway/observe/stats_share.py) and, for the
state that lives in Prometheus metrics (in flight, breakers, shield and lookup cache
totals, upstream and Redis outcomes, refusals), reads the same registry ``/metrics``
renders, which in multiprocess mode is already merged over the workers. It ends with
``alerts``: what a person should notice now (Redis bypassed, a breaker open, 5xx or
upstream errors up, draining), worded in full, so the page and a script agree.

``/status`` is one static HTML file (gateway/observe/status.html: inline CSS and JS, SVG charts,
no external assets) that polls ``/stats``; it is read once at import, never per request.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from gateway import __version__
from gateway.config import Settings, mask_url
from gateway.observe.banner import store_description
from gateway.observe.health import DrainState
from gateway.observe.metrics import Metrics
from gateway.observe.ops_cache import BuildBudget, CachedBody
from gateway.observe.results import COALESCED, HIT

_encoder = msgspec.json.Encoder()

PAGE = resources.files("gateway.observe").joinpath("status.html").read_bytes()
_PAGE_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    # Nothing but the page itself and its own /stats: no other origin, no frames.
    "content-security-policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src data:; frame-ancestors 'none'"
    ),
}

# A route is flagged when at least this many requests in the last 10 s saw this share of
# 5xx answers (or of failed upstream calls).
ALERT_MIN_REQUESTS = 5
ALERT_ERROR_RATIO = 0.05


class StatsEndpoint:
    """``GET /stats``: rolling statistics and current state, for every worker together.

    The body is kept between builds and rebuilt only as ``budget`` allows
    (gateway/observe/ops_cache.py); a change of draining state is always shown at once.
    """

    def __init__(
        self,
        metrics: Metrics,
        settings: Settings,
        drain: DrainState,
        budget: BuildBudget | None = None,
        ledger: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.metrics = metrics
        self.settings = settings
        self.drain = drain
        self.ledger = ledger  # the ledger's queue and writer counters (this process)
        self._body = CachedBody(
            self._build,
            budget if budget is not None else BuildBudget(0.0, 1),
            metrics.ops_answer("/stats"),
        )

    def _build(self) -> bytes:
        body = replica_stats(self.metrics, self.settings, draining=self.drain.draining)
        if self.ledger is not None:
            body["ledger"] = self.ledger()
        return _encoder.encode(body)

    async def handle(self, request: Request) -> Response:
        return Response(self._body.get(self.drain.draining), media_type="application/json")


async def status_endpoint(request: Request) -> Response:
    """``GET /status``: the live page."""
    return Response(PAGE, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


def replica_stats(metrics: Metrics, settings: Settings, *, draining: bool = False) -> dict:
    snapshot = metrics.stats_snapshot()
    state = _state(_families(metrics))
    snapshot.update(
        pid=os.getpid(),
        version=__version__,
        draining=draining,
        in_flight=max(0, state["in_flight"] - 1),  # not counting this request
        upstreams={
            name: {
                "url": "sandbox" if settings.sandbox else mask_url(url),
                "breaker_open": state["breakers"].get(name, 0) > 0,
                "connections_in_use": state["connections"].get(name, 0),
                "outcomes": state["upstream"].get(name, {}),
            }
            for name, url in (
                ("rtb", settings.rtb_upstream_url),
                ("core_api", settings.core_api_url),
            )
        },
        shield={
            "store": store_description(settings),
            "totals": state["shield"],
            "store_entries": state["store_entries"],
        },
        redis={"outcomes": state["redis"]},
        lookup_cache={
            "totals": state["lookup_cache"],
            "hit_ratio": _hit_ratio(state["lookup_cache"]),
        },
        refusals=state["refusals"],
        access_log={"dropped": state["access_log_dropped"]},
    )
    snapshot["alerts"] = alerts(snapshot, redis=settings.redis_url is not None)
    return snapshot


def alerts(snapshot: Mapping[str, Any], *, redis: bool) -> list[dict[str, str]]:
    """What is wrong right now, each as ``{"level", "what", "detail"}``; empty when fine."""
    found: list[dict[str, str]] = []

    def alert(level: str, what: str, detail: str) -> None:
        found.append({"level": level, "what": what, "detail": detail})

    if snapshot.get("draining"):
        alert("warning", "draining", "SIGTERM received: /readyz answers 503 until the exit")
    for name, upstream in snapshot.get("upstreams", {}).items():
        if upstream.get("breaker_open"):
            alert(
                "error",
                f"{name} breaker open",
                f"the {name} upstream failed repeatedly: its requests are refused at once "
                "(503) until a probe succeeds",
            )
    recent = snapshot.get("windows", {}).get("10s", {})
    unshielded = sum(r["shield"]["bypass"] + r["shield"]["error"] for r in recent.values())
    if redis and unshielded:
        alert(
            "error",
            "Redis unavailable: shield bypassed",
            f"{unshielded} pings in the last 10 s could not use Redis and were forwarded "
            "unshielded (duplicates reach the upstream)",
        )
    for route, r in recent.items():
        if r["requests"] >= ALERT_MIN_REQUESTS and r["error_ratio"] >= ALERT_ERROR_RATIO:
            alert(
                "error",
                f"5xx on {route}",
                f"{r['error_ratio']:.0%} of {r['requests']} requests in the last 10 s answered 5xx",
            )
        up = r["upstream"]
        if up["requests"] >= ALERT_MIN_REQUESTS and up["errors"] / up["requests"] >= (
            ALERT_ERROR_RATIO
        ):
            alert(
                "warning",
                f"upstream errors on {route}",
                f"{up['errors']} of {up['requests']} upstream calls in the last 10 s failed "
                "(timeout, 5xx, connection or throttled)",
            )
    return found


def _families(metrics: Metrics) -> Iterable[Any]:
    metrics.refresh()
    if metrics.multiprocess_dir is None:
        return metrics.registry.collect()
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=metrics.multiprocess_dir)
    return merged.collect()


def _state(families: Iterable[Any]) -> dict[str, Any]:
    state: dict[str, Any] = {
        "in_flight": 0,
        "store_entries": 0,
        "breakers": {},
        "connections": {},
        "upstream": {},
        "shield": {},
        "lookup_cache": {},
        "redis": {},
        "refusals": {},
        "access_log_dropped": 0,
    }

    def add(into: dict[str, Any], key: str, value: float) -> None:
        into[key] = int(into.get(key, 0) + value)

    for family in families:
        for s in family.samples:
            name, labels, value = s.name, s.labels, s.value
            if name == "gateway_http_requests_in_flight":
                state["in_flight"] += int(value)
            elif name == "gateway_shield_store_entries":
                state["store_entries"] += int(value)
            elif name == "gateway_upstream_breaker_open":
                add(state["breakers"], labels["upstream"], value)
            elif name == "gateway_upstream_connections_in_use":
                add(state["connections"], labels["upstream"], value)
            elif name == "gateway_upstream_request_duration_seconds_count":
                add(state["upstream"].setdefault(labels["upstream"], {}), labels["outcome"], value)
            elif name == "gateway_shield_lookups_total":
                add(state["shield"], labels["result"], value)
            elif name == "gateway_lookup_cache_lookups_total":
                add(state["lookup_cache"], labels["result"], value)
            elif name == "gateway_redis_command_duration_seconds_count":
                add(state["redis"], labels["outcome"], value)
            elif name == "gateway_protect_refusals_total":
                add(state["refusals"], labels["reason"], value)
            elif name == "gateway_access_log_dropped_total":
                state["access_log_dropped"] += int(value)
    return state


def _hit_ratio(totals: Mapping[str, int]) -> float | None:
    lookups = sum(totals.values())
    if not lookups:
        return None
    return round((totals.get(HIT, 0) + totals.get(COALESCED, 0)) / lookups, 6)
