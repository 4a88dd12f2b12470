"""The Grafana dashboard shipped with the chart reads only metrics the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gateway.observe.metrics import Metrics

DASHBOARD = Path(__file__).parents[2] / "helm/rtb-gateway/dashboards/rtb-gateway.json"


def _exported_names() -> set[str]:
    text = Metrics().render().decode()
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "counter":
                names.add(name + "_total")
            if kind == "histogram":
                names.update({name + "_bucket", name + "_count", name + "_sum"})
    return names


def _targets(dashboard: dict) -> list[dict]:
    return [t for p in dashboard["panels"] for t in p.get("targets", [])]


def test_every_query_reads_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _exported_names()
    targets = _targets(dashboard)
    assert len(targets) >= 15
    used = set()
    for t in targets:
        names = set(re.findall(r"\bgateway_[a-z_]+", t["expr"]))
        assert names, t["expr"]
        assert names <= exported, (names - exported, t["expr"])
        used |= names
        assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
        if "rate(" in t["expr"]:
            assert "[$__rate_interval]" in t["expr"], t["expr"]
    # The list: throughput by route and status, p50/p99, shield hit ratio,
    # upstream latency and errors, Redis errors/bypass, in-flight.
    for name in (
        "gateway_http_requests_total",
        "gateway_http_request_duration_seconds_bucket",
        "gateway_shield_lookups_total",
        "gateway_upstream_request_duration_seconds_bucket",
        "gateway_upstream_request_duration_seconds_count",
        "gateway_redis_command_duration_seconds_count",
        "gateway_http_requests_in_flight",
    ):
        assert name in used, name


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not (cells & mine), p["title"]
        cells |= mine
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "namespace", "pod"}
    for t in _targets(dashboard):
        assert t["datasource"]["uid"] == "${datasource}"
