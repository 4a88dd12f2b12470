"""``gateway serve --workers 2``: /metrics and /stats add up across workers, whichever
one answers.

Each request opens a fresh connection so the kernel spreads them over both workers;
every scrape (answered by either worker) must count all of them. /stats sees the other
worker's rings through the file it rewrites once a second, so it is polled until the
other worker's last pings show up (never more than all of them).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import GatewayProcess

N = 200


def _value(text: str, name: str, **match: str) -> float:
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
    )


@pytest.mark.slow
def test_two_workers_metrics_add_up() -> None:
    gw = GatewayProcess({"GATEWAY_LOG_LEVEL": "info"}, "--workers", "2", "--sandbox")
    try:
        gw.wait_ready(timeout=60)
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=gw.url, limits=fresh, timeout=20) as c:
            for i in range(N):
                r = c.post(
                    "/rtbs.json",
                    params={
                        "key": "workerskey",
                        "publisher_id": "p1",
                        "caller_number": f"+1855{4000000 + i:07d}",
                    },
                )
                assert r.status_code == 200, r.text
            for _ in range(8):
                text = c.get("/metrics").text
                assert (
                    _value(text, "gateway_http_requests_total", route="/rtbs.json", status="200")
                    == N
                )
                assert (
                    _value(text, "gateway_http_request_duration_seconds_count", route="/rtbs.json")
                    == N
                )
                assert _value(text, "gateway_upstream_request_duration_seconds_count") == N
                assert 1 <= _value(text, "gateway_http_requests_in_flight") <= 2
                build = [
                    s
                    for f in text_string_to_metric_families(text)
                    for s in f.samples
                    if s.name == "gateway_build_info"
                ]
                assert len(build) == 1
                assert build[0].value == 1
            deadline = time.monotonic() + 10
            while True:
                stats = c.get("/stats").json()
                assert stats["workers"] == 2
                ping = stats["windows"]["60s"].get("/rtbs.json", {"requests": 0})
                assert ping["requests"] <= N
                if ping["requests"] == N or time.monotonic() > deadline:
                    break
                time.sleep(0.1)  # polling: the other worker rewrites its file each second
            assert ping["requests"] == N
            assert ping["status"]["ok"] == N
            assert sum(stats["series"]["routes"]["/rtbs.json"]["requests"]) == N
            assert stats["shield"]["totals"]["miss"] == N
            assert stats["upstreams"]["rtb"]["outcomes"] == {"ok": N}
        gw.signal(signal.SIGTERM)
        assert gw.wait(60) == 0
    finally:
        if gw.proc.poll() is None:  # a failed assertion: let the supervisor stop its workers
            gw.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                gw.wait(60)
        _out, err = gw.stop()
    metrics_dirs = [
        json.loads(line).get("dir")
        for line in err.splitlines()
        if line.startswith("{") and '"multiprocess metrics"' in line
    ]
    assert len(metrics_dirs) == 1
    listening = [
        json.loads(line) for line in err.splitlines() if '"listening on http://' in line
    ]  # once, by the supervisor, for the whole replica
    assert [line["workers"] for line in listening] == [2]
    assert not os.path.exists(metrics_dirs[0])  # the supervisor cleaned up after itself
