"""Render docs/pages/img/dashboard.png: the Grafana dashboard's main panels, from real /metrics.

There is no Grafana here, so this runs the gateway for real (``gateway serve --sandbox``
with a real redis-server behind the shield), drives a mixed load at it for a minute and
a half, scrapes ``/metrics`` every two seconds, and computes each panel with the same
arithmetic as its PromQL (``rate`` over 10 s, ``histogram_quantile`` on bucket deltas).

    uv run python docs/render_dashboard.py            # ~100 s; writes docs/pages/img/dashboard.png

The load: ~120 pings/s (half repeat a recent caller, so the shield answers them; the
sandbox delays the rest 2-20 ms; 2 % get an upstream 500, 0.3 % outlast the 300 ms
deadline), Core API lookups at ~10/s, a burst to ~250 pings/s at 60-70 s, and Redis
frozen (SIGSTOP) from 35 s to 45 s so the shield fails open and says so.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.ports import free_port  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

DURATION_S = 90
SCRAPE_S = 2.0
RATE_WINDOW_S = 10.0
OUT = ROOT / "docs" / "pages" / "img" / "dashboard.png"

Scrape = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse(text: str) -> Scrape:
    out: Scrape = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


async def drive(url: str, redis: RedisServer, stop_at: float) -> None:
    recent: list[str] = []
    n = 0
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as s:

        async def ping() -> None:
            nonlocal n
            n += 1
            if recent and random.random() < 0.5:
                caller = random.choice(recent)
            else:
                caller = f"+1855{2000000 + n:07d}"
                recent.append(caller)
                del recent[:-200]
            params = {
                "key": "dashboardkey",
                "publisher_id": f"pub{n % 7}",
                "caller_number": caller,
                "sandbox_delay_ms": str(random.randint(2, 20)),
            }
            roll = random.random()
            if roll < 0.02:
                params["sandbox_status"] = "500"
            elif roll < 0.023:
                params["sandbox_delay_ms"] = "500"
            async with s.post(url + "/rtbs.json", params=params) as r:
                await r.read()

        async def lookup() -> None:
            path = random.choice(("/calls.json", "/numbers.json", "/campaigns.json"))
            async with s.get(url + path, params={"api_key": "woofwoofwoof"}) as r:
                await r.read()

        tasks: set[asyncio.Task[None]] = set()
        frozen = False
        while (now := time.monotonic()) < stop_at:
            elapsed = now - started
            if 35 <= elapsed < 45 and not frozen:
                redis.pause()
                frozen = True
            elif elapsed >= 45 and frozen:
                redis.resume()
                frozen = False
            rate = 250 if 60 <= elapsed < 70 else 120
            for _ in range(rate // 20):
                t = asyncio.create_task(ping())
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            if random.random() < 0.5:
                t = asyncio.create_task(lookup())
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            await asyncio.sleep(0.05)
        if frozen:
            redis.resume()
        await asyncio.gather(*tasks, return_exceptions=True)


async def scrape(url: str, stop_at: float, into: list[tuple[float, Scrape]]) -> None:
    started = time.monotonic()
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < stop_at:
            async with s.get(url + "/metrics") as r:
                into.append((time.monotonic() - started, parse(await r.text())))
            await asyncio.sleep(SCRAPE_S)


def _sum_by(scrape: Scrape, name: str, by: tuple[str, ...], where=None) -> dict[tuple, float]:
    out: dict[tuple, float] = defaultdict(float)
    for labels, value in scrape.get(name, {}).items():
        d = dict(labels)
        if where is not None and not where(d):
            continue
        out[tuple(d.get(k, "") for k in by)] += value
    return out


def rate(scrapes, name, by, where=None):
    """{group: (times, per-second rates)} over RATE_WINDOW_S, like rate()[10s]."""
    series: dict[tuple, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    lag = round(RATE_WINDOW_S / SCRAPE_S)
    for i in range(lag, len(scrapes)):
        (t0, a), (t1, b) = scrapes[i - lag], scrapes[i]
        old, new = _sum_by(a, name, by, where), _sum_by(b, name, by, where)
        for group, value in new.items():
            xs, ys = series[group]
            xs.append(t1)
            ys.append(max(value - old.get(group, 0.0), 0.0) / (t1 - t0))
    return series


def quantile(scrapes, name, q, by, where=None):
    """{group: (times, seconds)}: histogram_quantile(q, sum by (le, ...) (rate(...)))."""
    series: dict[tuple, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    lag = round(RATE_WINDOW_S / SCRAPE_S)
    for i in range(lag, len(scrapes)):
        (_, a), (t1, b) = scrapes[i - lag], scrapes[i]
        old = _sum_by(a, name + "_bucket", (*by, "le"), where)
        new = _sum_by(b, name + "_bucket", (*by, "le"), where)
        groups: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
        for key, value in new.items():
            groups[key[:-1]].append((float(key[-1]), value - old.get(key, 0.0)))
        for group, buckets in groups.items():
            buckets.sort()
            total = buckets[-1][1]
            if total <= 0:
                continue
            rank, lo_edge, lo_count = q * total, 0.0, 0.0
            for edge, count in buckets:
                if count >= rank:
                    value = (
                        lo_edge
                        if edge == float("inf")
                        else (
                            lo_edge
                            + (edge - lo_edge) * (rank - lo_count) / max(count - lo_count, 1e-9)
                        )
                    )
                    break
                lo_edge, lo_count = edge, count
            xs, ys = series[group]
            xs.append(t1)
            ys.append(value)
    return series


BG, PANEL, GRID, TEXT = "#111217", "#181b1f", "#2c3036", "#ccccdc"
COLORS = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff", "#96d98d"]


def _panel(ax, title: str, unit: str = "") -> None:
    ax.set_facecolor(PANEL)
    ax.set_title(title, color=TEXT, fontsize=10, loc="left")
    ax.tick_params(colors=TEXT, labelsize=8)
    ax.grid(color=GRID, linewidth=0.6)
    for spine in ax.spines.values():
        spine.set_color(GRID)
    if unit:
        ax.set_ylabel(unit, color=TEXT, fontsize=8)


def _plot(ax, series, label, scale: float = 1.0, top: int = 6) -> None:
    ranked = sorted(series.items(), key=lambda kv: -max(kv[1][1] or [0]))[:top]
    for i, (group, (xs, ys)) in enumerate(sorted(ranked)):
        ax.plot(
            xs, [y * scale for y in ys], color=COLORS[i % len(COLORS)], lw=1.4, label=label(group)
        )
    if ranked:
        ax.legend(fontsize=7, facecolor=PANEL, edgecolor=GRID, labelcolor=TEXT, loc="upper left")


def render(scrapes: list[tuple[float, Scrape]]) -> None:
    fig, axes = plt.subplots(3, 3, figsize=(16, 10.5), facecolor=BG)
    fig.suptitle(
        "rtb-gateway dashboard, rendered from /metrics of a 90 s local run "
        "(sandbox upstream, Redis frozen 35-45 s, burst 60-70 s)",
        color=TEXT,
        fontsize=12,
        x=0.01,
        ha="left",
    )
    ax = axes[0][0]
    _panel(ax, "Throughput by route and status", "req/s")
    _plot(
        ax,
        rate(scrapes, "gateway_http_requests_total", ("route", "status")),
        lambda g: f"{g[0]} {g[1]}",
    )
    ax = axes[0][1]
    _panel(ax, "Latency p50 / p99, POST /rtbs.json", "ms")
    ping = lambda d: d.get("route") == "/rtbs.json"  # noqa: E731
    for q, color in ((0.5, COLORS[0]), (0.99, COLORS[1])):
        for _, (xs, ys) in quantile(
            scrapes, "gateway_http_request_duration_seconds", q, (), ping
        ).items():
            ax.plot(xs, [y * 1000 for y in ys], color=color, lw=1.4, label=f"p{int(q * 100)}")
    ax.axhline(25, color=COLORS[3], ls="--", lw=0.8, label="25 ms SLO (hit)")
    ax.axhline(50, color=COLORS[4], ls="--", lw=0.8, label="50 ms SLO (forward)")
    ax.legend(fontsize=7, facecolor=PANEL, edgecolor=GRID, labelcolor=TEXT, loc="upper left")
    ax = axes[0][2]
    _panel(ax, "Shield lookups by result", "ops/s")
    _plot(ax, rate(scrapes, "gateway_shield_lookups_total", ("result",)), lambda g: g[0])
    ax = axes[1][0]
    _panel(ax, "Shield hit ratio (hit + coalesced)", "%")
    served = rate(
        scrapes,
        "gateway_shield_lookups_total",
        (),
        lambda d: d.get("result") in ("hit", "coalesced"),
    )
    total = rate(scrapes, "gateway_shield_lookups_total", ())
    for group, (xs, ys) in total.items():
        hits = served.get(group, (xs, [0.0] * len(xs)))[1]
        ax.plot(
            xs,
            [100 * h / t if t else 0 for h, t in zip(hits, ys, strict=False)],
            color=COLORS[0],
            lw=1.4,
        )
    ax.set_ylim(0, 100)
    ax = axes[1][1]
    _panel(ax, "Upstream latency p99", "ms")
    _plot(
        ax,
        quantile(scrapes, "gateway_upstream_request_duration_seconds", 0.99, ("upstream",)),
        lambda g: f"p99 {g[0]}",
        scale=1000,
    )
    ax = axes[1][2]
    _panel(ax, "Upstream requests by outcome", "req/s")
    _plot(
        ax,
        rate(scrapes, "gateway_upstream_request_duration_seconds_count", ("upstream", "outcome")),
        lambda g: f"{g[0]} {g[1]}",
    )
    ax = axes[2][0]
    _panel(ax, "Redis errors and shield fail-open", "ops/s")
    _plot(
        ax,
        rate(
            scrapes,
            "gateway_redis_command_duration_seconds_count",
            ("command", "outcome"),
            lambda d: d.get("outcome") != "ok",
        ),
        lambda g: f"redis {g[0]} {g[1]}",
        top=4,
    )
    _plot(
        ax,
        rate(
            scrapes,
            "gateway_shield_lookups_total",
            ("result",),
            lambda d: d.get("result") in ("error", "bypass"),
        ),
        lambda g: f"shield {g[0]}",
    )
    ax = axes[2][1]
    _panel(ax, "In flight and upstream connections in use")
    for name, label, color in (
        ("gateway_http_requests_in_flight", "in flight", COLORS[2]),
        ("gateway_upstream_connections_in_use", "rtb connections", COLORS[5]),
    ):
        xs = [t for t, _ in scrapes]
        ys = [
            sum(v for k, v in s.get(name, {}).items() if "core_api" not in str(k))
            for _, s in scrapes
        ]
        ax.plot(xs, ys, color=color, lw=1.4, label=label)
    ax.legend(fontsize=7, facecolor=PANEL, edgecolor=GRID, labelcolor=TEXT, loc="upper left")
    ax = axes[2][2]
    _panel(ax, "Core API lookup cache", "ops/s")
    _plot(ax, rate(scrapes, "gateway_lookup_cache_lookups_total", ("result",)), lambda g: g[0])
    for row in axes:
        for ax in row:
            ax.set_xlim(0, DURATION_S)
    axes[2][1].set_xlabel("seconds", color=TEXT, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(OUT, dpi=72, facecolor=BG)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KB)")


def main() -> int:
    redis = RedisServer()
    redis.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_REDIS_URL=redis.url,
        GATEWAY_RTB_TIMEOUT_MS="300",
        GATEWAY_LOG_LEVEL="warning",
        GATEWAY_DRAIN_DELAY_S="0",
    )
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                import urllib.request

                with urllib.request.urlopen(url + "/readyz", timeout=1) as r:  # noqa: S310
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        scrapes: list[tuple[float, Scrape]] = []

        async def run() -> None:
            stop_at = time.monotonic() + DURATION_S
            await asyncio.gather(drive(url, redis, stop_at), scrape(url, stop_at, scrapes))

        asyncio.run(run())
        render(scrapes)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(30)
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
