"""Reading the gateway's ``/metrics`` (Prometheus text format) for verdicts.

Only what the load tools need: samples by name and labels, and the per-route latency
histogram turned into counts, quantiles and "share of requests within X". Quantiles are
interpolated inside a bucket exactly as PromQL's ``histogram_quantile`` does, so the
numbers printed here are the ones an operator's dashboard would show; an SLO whose bound
is a bucket edge (the gateway puts one on each SLO) is checked exactly, with no
interpolation at all.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Labels = tuple[tuple[str, str], ...]


def parse(text: str) -> dict[str, dict[Labels, float]]:
    """``{metric_name: {sorted label pairs: value}}`` for every sample line."""
    out: dict[str, dict[Labels, float]] = defaultdict(dict)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, raw_labels, value = match.groups()
        labels = tuple(sorted(_LABEL.findall(raw_labels or "")))
        try:
            out[name][labels] = float(value)
        except ValueError:
            continue
    return dict(out)


def total(samples: dict[str, dict[Labels, float]], name: str, **match: str) -> float:
    """Sum of ``name`` over every series whose labels include ``match``."""
    series = samples.get(name, {})
    return sum(v for labels, v in series.items() if _matches(labels, match))


def by_label(samples: dict[str, dict[Labels, float]], name: str, label: str) -> dict[str, float]:
    """``name`` summed per value of one label."""
    out: dict[str, float] = defaultdict(float)
    for labels, value in samples.get(name, {}).items():
        out[dict(labels).get(label, "")] += value
    return dict(out)


def _matches(labels: Labels, match: dict[str, str]) -> bool:
    d = dict(labels)
    return all(d.get(k) == v for k, v in match.items())


@dataclass
class Histogram:
    """One histogram series: cumulative counts per upper bound (``+Inf`` last)."""

    buckets: list[tuple[float, float]]
    count: float
    sum: float

    def quantile(self, q: float) -> float:
        """PromQL ``histogram_quantile``: linear inside the bucket, upper bound if +Inf."""
        if self.count <= 0:
            return math.nan
        rank = q * self.count
        prev_le, prev_count = 0.0, 0.0
        for le, cum in self.buckets:
            if cum >= rank:
                if math.isinf(le):
                    return prev_le
                width = cum - prev_count
                if width <= 0:
                    return le
                return prev_le + (le - prev_le) * (rank - prev_count) / width
            prev_le, prev_count = le, cum
        return prev_le

    def share_within(self, seconds: float) -> float:
        """Share of observations at or below ``seconds`` (exact when it is a bucket edge)."""
        if self.count <= 0:
            return math.nan
        prev_le, prev_count = 0.0, 0.0
        for le, cum in self.buckets:
            if math.isclose(le, seconds, rel_tol=1e-9):
                return cum / self.count
            if le > seconds:
                if math.isinf(le):
                    return prev_count / self.count
                frac = (seconds - prev_le) / (le - prev_le)
                return (prev_count + frac * (cum - prev_count)) / self.count
            prev_le, prev_count = le, cum
        return 1.0

    def plus(self, other: Histogram) -> Histogram:
        """Both histograms' observations together (same bucket layout)."""
        theirs = dict(other.buckets)
        mine = dict(self.buckets)
        edges = sorted(set(mine) | set(theirs))
        return Histogram(
            [(le, mine.get(le, 0.0) + theirs.get(le, 0.0)) for le in edges],
            self.count + other.count,
            self.sum + other.sum,
        )

    def minus(self, before: Histogram | None) -> Histogram:
        """The observations made since ``before`` (same bucket layout)."""
        if before is None:
            return self
        old = dict(before.buckets)
        return Histogram(
            [(le, cum - old.get(le, 0.0)) for le, cum in self.buckets],
            self.count - before.count,
            self.sum - before.sum,
        )


def histograms(
    samples: dict[str, dict[Labels, float]], name: str, label: str
) -> dict[str, Histogram]:
    """Every series of histogram ``name``, keyed by the value of ``label`` (e.g. route)."""
    buckets: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for labels, value in samples.get(name + "_bucket", {}).items():
        d = dict(labels)
        le = d.get("le", "+Inf")
        buckets[d.get(label, "")].append((math.inf if le == "+Inf" else float(le), value))
    counts = by_label(samples, name + "_count", label)
    sums = by_label(samples, name + "_sum", label)
    return {
        key: Histogram(sorted(series), counts.get(key, 0.0), sums.get(key, 0.0))
        for key, series in buckets.items()
    }
