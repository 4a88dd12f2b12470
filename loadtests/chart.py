"""The benchmark's picture: throughput and p99 per scenario against the nginx baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def draw(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    rows = results["throughput"]
    names = [r["scenario"] for r in rows]
    rps = [r["rps"] for r in rows]
    p99 = [r["p99_ms"] for r in rows]
    colors = ["#7f7f7f" if r["scenario"].startswith("nginx") else "#1f77b4" for r in rows]
    rate = results.get("fixed_rate") or []

    fig, axes = plt.subplots(1, 3 if rate else 2, figsize=(16 if rate else 11, 5.2))
    ax = axes[0]
    bars = ax.barh(names, rps, color=colors)
    ax.invert_yaxis()
    ax.set_xlabel("requests/s (wrk, closed loop, server on one core)")
    ax.set_title("Throughput")
    base = rows[0]["rps"] if rows and rows[0]["scenario"].startswith("nginx") else None
    for bar, row in zip(bars, rows, strict=True):
        label = f"{row['rps']:,.0f}"
        if base:
            label += f"  ({row['rps'] / base:.0%})"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + label, va="center")
    ax.set_xlim(0, max(rps) * 1.35 if rps else 1)

    ax = axes[1]
    bars = ax.barh(names, p99, color=colors)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(min(p99) / 2 if p99 else 0.1, max(p99) * 4 if p99 else 1)
    ax.set_xlabel("p99 latency, ms (log scale; at saturation, so mostly queueing)")
    ax.set_title("p99 at full load")
    for bar, value in zip(bars, p99, strict=True):
        ax.text(value, bar.get_y() + bar.get_height() / 2, f" {value:.1f}", va="center")

    if rate:
        ax = axes[2]
        labels = [r["target"] for r in rate]
        p50 = [r["p50_ms"] for r in rate]
        r99 = [r["p99_ms"] for r in rate]
        y = range(len(labels))
        ax.barh([i + 0.2 for i in y], r99, height=0.4, label="p99", color="#d62728")
        ax.barh([i - 0.2 for i in y], p50, height=0.4, label="p50", color="#ff9896")
        ax.set_yticks(list(y), labels)
        ax.invert_yaxis()
        ax.set_xlabel(f"latency, ms at a fixed {rate[0]['rate']:,.0f} req/s (open loop)")
        ax.set_title("Added latency at a steady rate")
        for i, value in enumerate(r99):
            ax.text(value, i + 0.2, f" {value:.2f}", va="center")
        ax.legend(loc="lower right")
        ax.set_xlim(0, max(r99) * 1.3 if r99 else 1)

    title = results.get("title", "rtb-gateway benchmark")
    if results.get("machine"):
        title += f"\n{results['machine']}; {results.get('pinning', '')}"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
