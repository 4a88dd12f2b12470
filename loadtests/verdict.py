"""The SLO verdict of a load-test run, from what the run left behind.

Inputs are plain data: the gateway's ``/metrics`` before and after the run, Locust's
aggregated counts, the summary the locustfile wrote (which shield keys it sent, what
``X-Shield`` said, whether bursts and repeats kept one reservation) and the requests the
sandbox upstream received. Each check yields a :class:`Check` line; the run passes only
if every check does.

Why p99 comes from the gateway and not from Locust: Locust is closed-loop (a user waits
for an answer before sending again), so when the gateway slows down the offered load
drops with it and the client's percentiles hide the stall. The gateway's histogram
counts every request it served; its buckets have an edge on each SLO, so "99% within
50 ms" is read exactly, not interpolated.

"Upstream requests per unique caller == 1" is checked two ways, because each source has
a blind spot: the sandbox lists at most 10,000 recent requests (exact when the run fits,
a duplicate check over the window otherwise), and the shield counter
``gateway_shield_lookups_total`` counts every forward (``miss``, plus ``error`` and
``bypass`` that skip the store) over the whole run.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import promtext

SANDBOX_WINDOW = 10_000
OPS_ROUTES = frozenset({"/metrics", "/healthz", "/readyz", "/stats", "/openapi.json"})


@dataclass(frozen=True)
class Slos:
    rtb_p99_ms: float = 50.0
    confirm_p99_ms: float = 50.0
    lookup_p99_ms: float = 250.0
    max_failure_ratio: float = 0.001

    def p99_for(self, route: str) -> float:
        if route == "/rtbs.json":
            return self.rtb_p99_ms
        if route.startswith("/rtbs/"):
            return self.confirm_p99_ms
        return self.lookup_p99_ms


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def latency_checks(before: dict, after: dict, slos: Slos) -> tuple[list[Check], list[dict]]:
    """p99 per route from the server-side histogram (only what this run added).

    The RTB routes are judged one by one; the Core API routes, each with few requests in
    a mixed run, are judged together against the lookup SLO (each is still printed).
    """
    name = "gateway_http_request_duration_seconds"
    old = promtext.histograms(before, name, "route")
    new = promtext.histograms(after, name, "route")
    groups: dict[str, promtext.Histogram] = {}
    rows = []
    for route in sorted(new):
        if route in OPS_ROUTES:
            continue
        hist = new[route].minus(old.get(route))
        if hist.count <= 0:
            continue
        rows.append(_row(route, hist, slos.p99_for(route)))
        group = route if route.startswith("/rtbs") else "Core API lookups (all routes)"
        groups[group] = groups[group].plus(hist) if group in groups else hist
    checks = []
    for group, hist in groups.items():
        slo_ms = slos.p99_for(group)
        within = hist.share_within(slo_ms / 1000)
        checks.append(
            Check(
                f"p99 {group}",
                within >= 0.99,
                f"p99 {_ms(hist.quantile(0.99))} (SLO {slo_ms:g} ms; "
                f"{within * 100:.2f}% within), p50 {_ms(hist.quantile(0.5))}, "
                f"n={int(hist.count)}",
            )
        )
    if not rows:
        checks.append(Check("p99 per route", False, "the gateway's histogram recorded nothing"))
    return checks, rows


def _row(route: str, hist: promtext.Histogram, slo_ms: float) -> dict[str, Any]:
    return {
        "route": route,
        "count": int(hist.count),
        "p50_ms": hist.quantile(0.50) * 1000,
        "p99_ms": hist.quantile(0.99) * 1000,
        "mean_ms": hist.sum / hist.count * 1000,
        "slo_p99_ms": slo_ms,
        "share_within_slo": hist.share_within(slo_ms / 1000),
    }


def failure_checks(
    locust_requests: int, locust_failures: int, before: dict, after: dict, slos: Slos
) -> list[Check]:
    checks = []
    ratio = locust_failures / locust_requests if locust_requests else math.nan
    checks.append(
        Check(
            "failure ratio (Locust)",
            locust_requests > 0 and ratio <= slos.max_failure_ratio,
            f"{locust_failures}/{locust_requests} = {ratio * 100:.3f}% "
            f"(max {slos.max_failure_ratio * 100:g}%); a failure is any answer that breaks "
            "the contract, not only a 5xx",
        )
    )
    name = "gateway_http_requests_total"
    served = errors = 0.0
    for labels, value in after.get(name, {}).items():
        d = dict(labels)
        if d.get("route") in OPS_ROUTES:
            continue
        delta = value - before.get(name, {}).get(labels, 0.0)
        served += delta
        if d.get("status", "").startswith("5"):
            errors += delta
    ratio = errors / served if served else math.nan
    checks.append(
        Check(
            "5xx ratio (gateway /metrics)",
            served > 0 and ratio <= slos.max_failure_ratio,
            f"{int(errors)}/{int(served)} = {ratio * 100:.3f}%",
        )
    )
    return checks


def upstream_checks(
    summary: dict[str, Any], sandbox_requests: list[dict[str, Any]], before: dict, after: dict
) -> list[Check]:
    # A ping the run attempted may or may not have reached the gateway when Locust stopped;
    # one that was answered certainly did. The upstream must have seen every answered
    # caller once, and nothing outside the attempted ones.
    attempted = set(summary.get("attempted_shield_keys", ()))
    answered = set(summary.get("answered_shield_keys", ()))
    checks: list[Check] = []
    posts = [r for r in sandbox_requests if r.get("path") == "/rtbs.json"]
    complete = len(sandbox_requests) < SANDBOX_WINDOW
    seen = Counter(
        f"{r['fields'].get('key')}|{r['fields'].get('caller_number')}"
        for r in posts
        if isinstance(r.get("fields"), dict)
    )
    leaked = sum(1 for r in posts if (r.get("fields") or {}).get("lt_kind") == "invalid")
    checks.append(
        Check(
            "invalid pings never forwarded",
            leaked == 0,
            f"{leaked} invalid pings reached the upstream",
        )
    )
    dupes = {k: n for k, n in seen.items() if n > 1}
    extra = sum(n - 1 for n in dupes.values())
    if complete:
        missing = len(answered - set(seen))
        unexpected = len(set(seen) - attempted)
        ratio = len(posts) / len(seen) if seen else math.nan
        checks.append(
            Check(
                "upstream requests per unique caller == 1 (sandbox, exact)",
                bool(answered) and not dupes and missing == 0 and unexpected == 0,
                f"{len(posts)} upstream pings for {len(answered)} distinct callers answered "
                f"({len(attempted)} attempted; ratio {ratio:.3f}); {len(dupes)} callers "
                f"forwarded more than once ({extra} extra requests), {missing} answered but "
                f"never forwarded, {unexpected} never sent",
            )
        )
    else:
        checks.append(
            Check(
                "upstream requests per unique caller == 1 (sandbox, last 10,000)",
                not dupes,
                f"window of {len(posts)} upstream pings: {len(dupes)} callers forwarded "
                f"more than once ({extra} extra); the whole run is checked by the shield "
                "counter below",
            )
        )
    shield = {
        k: v - promtext.by_label(before, "gateway_shield_lookups_total", "result").get(k, 0.0)
        for k, v in promtext.by_label(after, "gateway_shield_lookups_total", "result").items()
    }
    lookups = sum(shield.values())
    forwarded = shield.get("miss", 0) + shield.get("error", 0) + shield.get("bypass", 0)
    parts = ", ".join(f"{k}={int(v)}" for k, v in sorted(shield.items()))
    if lookups <= 0:
        checks.append(
            Check(
                "upstream requests per unique caller == 1 (shield counter)",
                False,
                "gateway_shield_lookups_total did not move: no ping shield is answering "
                "(every ping was forwarded)",
            )
        )
    else:
        checks.append(
            Check(
                "upstream requests per unique caller == 1 (shield counter)",
                len(answered) <= forwarded <= len(attempted),
                f"{int(forwarded)} forwards for {len(answered)} distinct callers answered "
                f"({len(attempted)} attempted; ratio {forwarded / max(1, len(answered)):.3f}); "
                f"{parts}",
            )
        )
        degraded = shield.get("error", 0) + shield.get("bypass", 0)
        checks.append(
            Check(
                "shield store healthy (no error/bypass)",
                degraded == 0,
                f"error={int(shield.get('error', 0))} bypass={int(shield.get('bypass', 0))}",
            )
        )
    bursts, one = summary.get("bursts", 0), summary.get("bursts_one_reservation", 0)
    if bursts:
        checks.append(
            Check(
                "concurrent duplicates share one reservation",
                one == bursts,
                f"{one}/{bursts} bursts answered with a single uuid",
            )
        )
    used, split = summary.get("repeat_callers_used", 0), summary.get("repeat_callers_split", 0)
    if used:
        checks.append(
            Check(
                "repeat callers keep their reservation",
                split == 0,
                f"{split}/{used} repeat callers got more than one uuid",
            )
        )
    return checks


def info_lines(summary: dict[str, Any]) -> list[str]:
    """Facts worth printing that are not pass/fail."""
    lines = []
    xs = summary.get("x_shield") or {}
    if xs:
        lines.append("X-Shield by kind: " + ", ".join(f"{k}={v}" for k, v in sorted(xs.items())))
    core = summary.get("core_api") or {}
    if core:
        text = ", ".join(f"{k}: {v}" for k, v in sorted(core.items()))
        lines.append(f"Core API lookups ({summary.get('core_api_mode')}): {text}")
        if core.get("404 no such route") and summary.get("core_api_mode") == "optional":
            lines.append(
                "  note: the gateway answered 'no such route' for Core API paths; tolerated "
                "because LOADTEST_CORE_API=optional (use --core-api required once they exist)"
            )
    if summary.get("invalid"):
        lines.append(
            "invalid pings: " + ", ".join(f"{k}={v}" for k, v in summary["invalid"].items())
        )
    if summary.get("confirms"):
        lines.append(
            "confirmations: " + ", ".join(f"{k}={v}" for k, v in summary["confirms"].items())
        )
    if summary.get("pool_exhausted"):
        lines.append(f"payload pool ran out (made on the fly): {summary['pool_exhausted']}")
    return lines
