"""Metric cardinality: many distinct callers and publishers never mint new series.

Bound: after 100,000 pings of every kind (valid, shielded, invalid, malformed, wrong
method, unknown paths with ids, Core API paths with ids) the exposition has fewer than
500 series, and exactly the same series as after the first 10,000: the set stops growing
once every (route, method, status) the traffic can produce has been seen. No label value
is a number (except ``status``, a three-digit code, and ``le``), an id, a caller, a
publisher or a key.

The 100,000 run calls the app through its ASGI interface (it counts, it does not time);
the same mix also runs over a real socket against the real sandbox.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.config import Settings
from gateway.observe.middleware import route_templates
from gateway.ping.requests import Ping
from gateway.shield.base import Forward
from gateway.wire.answer import UpstreamAnswer
from tests.observe.asgi import running
from tests.support.servers import serve_app

SERIES_BOUND = 500
RESULTS = ("hit", "miss", "coalesced", "bypass", "error")
_ANSWER = msgspec.json.encode(
    {"uuid": "c6e4ce37-9b49-46af-bd8e-16cb7753499d", "status": "reserved"}
)


class LocalShield:
    """Answers pings itself, cycling through every shield result; every 1,000th forwards
    for real so the upstream histogram has its series too."""

    def __init__(self, settings: Settings, metrics: Any) -> None:
        self.metrics = metrics
        self.n = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def answer(
        self, ping: Ping, deadline: float, forward: Forward
    ) -> tuple[UpstreamAnswer, str]:
        self.n += 1
        result = RESULTS[self.n % len(RESULTS)]
        self.metrics.bind(self.metrics.shield_lookups, result).inc()
        if self.n % 1000 == 0:
            return await forward(), "miss"
        return UpstreamAnswer(200, _ANSWER), result

    async def confirmed(self, rtb_key: str, uuid: str, answer: UpstreamAnswer) -> None:
        return None


def caller(i: int) -> str:
    return f"+1855{2000000 + i:07d}"


def key(i: int) -> str:
    return f"rtbkey{i:07d}"


def publisher(i: int) -> str:
    return f"pub{i:07d}"


def request_for(i: int, *, in_process: bool) -> tuple[str, str, bytes, bytes, dict[str, str]]:
    """(method, path, query, body, headers): a 20-step cycle of every kind of request."""
    q = f"key={key(i)}&publisher_id={publisher(i)}&caller_number=%2B{caller(i)[1:]}"
    form = {"content-type": "application/x-www-form-urlencoded"}
    json_ct = {"content-type": "application/json"}
    step = i % 20
    if step < 8:
        return "POST", "/rtbs.json", q.encode(), b"", {}
    if step == 8:
        body = msgspec.json.encode(
            {"key": key(i), "source_id": publisher(i), "caller_number": caller(i), "n": i}
        )
        return "POST", "/rtbs.json", b"", body, json_ct
    if step == 9:
        return "POST", "/rtbs.json", b"", q.encode(), form
    if step == 10:
        return "POST", "/rtbs.json", f"key={key(i)}&caller_number={i}".encode(), b"", {}
    if step == 11:
        return "POST", "/rtbs.json", f"publisher_id={publisher(i)}".encode(), b"", {}
    if step == 12:
        return "POST", "/rtbs.json", b"", b'{"key": "' + key(i).encode() + b'",', json_ct
    if step == 13:
        return "POST", "/rtbs.json", q.encode(), b"hello", {"content-type": "text/plain"}
    if step == 14:
        return "GET", "/rtbs.json", q.encode(), b"", {}
    if step == 15:
        return "PUT", f"/rtbs/{i}.json", f"key={key(i)}&status=confirmed".encode(), b"", {}
    if step == 16:
        return "GET", f"/calls/{i}.json", f"api_key={key(i)}".encode(), b"", {}
    if step == 17:
        return "GET", f"/p/{i}/{caller(i)}", b"", b"", {}
    if step == 18:
        method = f"BREW{i % 7}" if in_process else "DELETE"
        return method, "/rtbs.json", q.encode(), b"", {}
    return "POST", "/rtbs.json", q.encode(), b"x" * 5000, form  # over the body limit


def settings(rtb_url: str) -> Settings:
    dead = "http://127.0.0.1:1"  # nothing here may reach a Core API
    return Settings.from_env(
        {}, rtb_upstream_url=rtb_url, core_api_url=dead, core_api_v2_url=dead, max_body_bytes=4096
    )


def series(text: str) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    return [
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-")
_DIGITS = re.compile(r"\d{4,}")
_VERSION = re.compile(r"\d+\.\d+\.\d+\S*")


def assert_labels_bounded(
    text: str, templates: set[str], secrets: tuple[str, ...] = ("rtbkey", "pub", "+1855")
) -> None:
    for name, labels in series(text):
        for label, value in labels:
            if label == "le":
                continue
            if label == "status":
                assert re.fullmatch(r"[1-5]\d\d", value), (name, label, value)
                continue
            if label == "route":
                assert value in templates, (name, value)
            if label == "version":
                assert _VERSION.fullmatch(value), (name, value)
                continue
            assert not value.lstrip("+-").replace(".", "").isdigit(), (name, label, value)
            assert not _DIGITS.search(value), (name, label, value)
            assert not _UUID.search(value), (name, label, value)
            for fragment in secrets:
                assert fragment not in value, (name, label, value)


@pytest.mark.slow
async def test_100k_pings_keep_metrics_bounded_in_process(sandbox_url: str) -> None:
    app = create_app(settings(sandbox_url), shield_factory=LocalShield)
    templates = set(route_templates(app.routes).values()) | {"unmatched"}
    statuses: dict[int, int] = {}

    async def drive(start: int, stop: int) -> None:
        for i in range(start, stop):
            method, path, query, body, headers = request_for(i, in_process=True)
            status, _ = await client.request(
                method,
                path,
                query,
                body,
                tuple((k.encode(), v.encode()) for k, v in headers.items()),
            )
            statuses[status] = statuses.get(status, 0) + 1

    async with running(app) as client:
        await client.request("GET", "/metrics")  # so the scrapes below add no series
        await drive(0, 10_000)
        _, first = await client.request("GET", "/metrics")
        await drive(10_000, 100_000)
        _, last = await client.request("GET", "/metrics")

    # The mix really produced many kinds of answers, and all of them were counted.
    assert {200, 400, 404, 405, 413, 415, 422} <= set(statuses), statuses
    text = last.decode()
    counted = sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "gateway_http_requests_total" and s.labels["route"] != "/metrics"
    )
    assert counted == 100_000
    # Bounded: the set of series stopped growing after the first 10,000.
    assert set(series(text)) == set(series(first.decode()))
    assert len(series(text)) < SERIES_BOUND, len(series(text))
    assert_labels_bounded(text, templates)


async def test_distinct_callers_over_a_real_socket_keep_metrics_bounded(
    sandbox_url: str,
) -> None:
    app = create_app(settings(sandbox_url))
    templates = set(route_templates(app.routes).values()) | {"unmatched"}
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        sem = asyncio.Semaphore(16)
        await client.get("/metrics")  # so the scrapes below add no series

        async def one(i: int) -> int:
            method, path, query, body, headers = request_for(i, in_process=False)
            async with sem:
                r = await client.request(
                    method,
                    path + ("?" + query.decode() if query else ""),
                    content=body,
                    headers=headers,
                )
            return r.status_code

        first = await asyncio.gather(*(one(i) for i in range(400)))
        text_first = (await client.get("/metrics")).text
        rest = await asyncio.gather(*(one(i) for i in range(400, 2000)))
        text = (await client.get("/metrics")).text
    assert {200, 400, 404, 405, 413, 415, 422} <= set(first) | set(rest)
    assert set(series(text)) == set(series(text_first))
    assert len(series(text)) < SERIES_BOUND
    assert_labels_bounded(text, templates)
