"""The histogram and /stats agree with what a client measured, on a controlled upstream.

100 pings, 90 delayed 10 ms and 10 delayed 60 ms by the sandbox (``sandbox_delay_ms``).
Nothing here asserts a speed; the assertions use two facts that hold on any machine:
the upstream delay is a floor for the server-side time, and each request's server-side
time is at most what its client measured. Hence, at every bucket edge ``e``, the
histogram counts at least as many requests ``<= e`` as the client saw, and none below
the floor.

Tolerances: Prometheus' p99 (``histogram_quantile`` on the exported buckets) lies in the
bucket of the slow group, i.e. above the 50 ms edge and no higher than the upper edge of
the bucket holding the client's p99; ``/stats``' p99 is within its own resolution, a
quarter octave (x 1.19), of the 60 ms floor below and of the client's p99 above.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.config import Settings
from gateway.observe.metrics import LATENCY_BUCKETS
from tests.support.servers import serve_app

QUARTER_OCTAVE = 2**0.25
FAST_MS, SLOW_MS = 10, 60
N = 100


def buckets(text: str, name: str, **match: str) -> list[tuple[float, float]]:
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name + "_bucket" and all(s.labels.get(k) == v for k, v in match.items()):
                out.append((float(s.labels["le"]), s.value))
    return sorted(out)


def histogram_quantile(q: float, cumulative: list[tuple[float, float]]) -> float:
    """PromQL's histogram_quantile over (le, cumulative count) pairs."""
    total = cumulative[-1][1]
    rank = q * total
    lower_edge, lower_count = 0.0, 0.0
    for edge, count in cumulative:
        if count >= rank:
            if edge == float("inf"):
                return lower_edge
            return lower_edge + (edge - lower_edge) * (rank - lower_count) / (count - lower_count)
        lower_edge, lower_count = edge, count
    return lower_edge


async def test_histogram_and_stats_agree_with_the_client(sandbox_url: str) -> None:
    app = create_app(Settings.from_env({}, rtb_upstream_url=sandbox_url))
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
        sem = asyncio.Semaphore(10)

        async def ping(i: int) -> float:
            delay = SLOW_MS if i % 10 == 0 else FAST_MS
            params = {
                "key": "latencykey",
                "publisher_id": "p1",
                "caller_number": f"+1855{3000000 + i:07d}",
                "sandbox_delay_ms": str(delay),
            }
            async with sem:
                started = time.perf_counter()
                r = await c.post("/rtbs.json", params=params)
                elapsed = time.perf_counter() - started
            assert r.status_code == 200, r.text
            return elapsed

        client = sorted(await asyncio.gather(*(ping(i) for i in range(N))))
        metrics = (await c.get("/metrics")).text
        stats = (await c.get("/stats")).json()

    client_p50, client_p99 = client[N // 2 - 1], client[int(N * 0.99) - 1]
    cumulative = buckets(metrics, "gateway_http_request_duration_seconds", route="/rtbs.json")
    assert cumulative[-1][1] == N
    for edge, count in cumulative:
        seen_by_client = sum(1 for t in client if t <= edge)
        assert count >= seen_by_client, (edge, count, seen_by_client)
        if edge < FAST_MS / 1000:
            assert count == 0, (edge, count)
        if edge < SLOW_MS / 1000:
            assert count <= N - N // 10, (edge, count)

    prom_p99 = histogram_quantile(0.99, cumulative)
    client_bucket_top = LATENCY_BUCKETS[bisect_left(LATENCY_BUCKETS, client_p99)]
    assert 0.05 < prom_p99 <= client_bucket_top, (prom_p99, client_p99)

    route = stats["windows"]["60s"]["/rtbs.json"]
    assert route["requests"] == N
    latency = route["latency_ms"]
    assert SLOW_MS / QUARTER_OCTAVE <= latency["p99"] <= client_p99 * 1000 * QUARTER_OCTAVE
    assert FAST_MS / QUARTER_OCTAVE <= latency["p50"] <= client_p50 * 1000 * QUARTER_OCTAVE
    assert SLOW_MS <= latency["max"] <= client[-1] * 1000
    upstream = route["upstream"]
    assert upstream["requests"] == N
    assert SLOW_MS / QUARTER_OCTAVE <= upstream["p99_ms"] <= latency["max"]
    assert route["error_ratio"] == 0
