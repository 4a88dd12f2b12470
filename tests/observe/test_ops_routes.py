"""/stats and /metrics under pressure: bodies kept between builds, requests paced and shed.

The budget and the pacer are pure state with an injectable clock; the HTTP tests run a
real gateway and read its own counters of builds and refusals.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from gateway.app import create_app
from gateway.config import ConfigError, Settings
from gateway.observe.ops_cache import FRESH_BUILDS, BuildBudget, CachedBody
from gateway.protect.ops_pacing import OpsPacer
from tests.conftest import RTB_KEY, MakeGateway
from tests.support.servers import serve_app


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_allows_a_burst_then_one_build_per_interval() -> None:
    clock = Clock()
    budget = BuildBudget(1.0, 3, clock)
    assert [budget.take() for _ in range(5)] == [True, True, True, False, False]
    clock.now += 0.5
    assert not budget.take()
    clock.now += 0.5
    assert budget.take()
    assert not budget.take()
    clock.now += 10  # idle: the whole burst is back
    assert [budget.take() for _ in range(4)] == [True, True, True, False]


def test_a_zero_interval_always_builds() -> None:
    budget = BuildBudget(0.0, 1, Clock())
    assert all(budget.take() for _ in range(100))


def test_the_body_is_kept_until_the_budget_allows_and_rebuilt_for_a_new_variant() -> None:
    clock = Clock()
    builds: list[int] = []
    answers: list[bool] = []

    def build() -> bytes:
        builds.append(1)
        return b"%d" % len(builds)

    body = CachedBody(build, BuildBudget(1.0, 1, clock), answers.append)
    assert [body.get(False) for _ in range(3)] == [b"1", b"1", b"1"]
    assert body.get(True) == b"2"  # draining now: shown at once, and counted as a build
    clock.now += 1.0
    assert body.get(True) == b"2"
    clock.now += 1.0
    assert body.get(True) == b"3"
    assert answers == [True, False, False, True, False, True]


async def test_the_pacer_lets_a_burst_through_makes_the_next_wait_and_sheds_past_the_queue() -> (
    None
):
    pacer = OpsPacer(rate=100, max_waiting=1, shed_delay_s=0.05)
    assert all([await pacer.admit() for _ in range(100)])  # one second's worth at once
    waiting = asyncio.create_task(pacer.admit())
    while pacer.waiting == 0:  # until it has taken its slot and waits for it
        await asyncio.sleep(0)
    shed = asyncio.create_task(pacer.admit())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not shed.done()  # the refusal is held back, not answered at once
    assert await shed is False  # the queue (of one) is full: shed
    assert await waiting is True  # its slot came, ~10 ms later
    assert pacer.waiting == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_OPS_MAX_RPS", "0"),
        ("GATEWAY_OPS_REFRESH_MS", "-1"),
        ("GATEWAY_OPS_MAX_WAITING", "x"),
    ],
)
def test_bad_ops_settings_name_their_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({variable: value})
    assert info.value.variable == variable


def _counter(text: str, name: str, labels: str) -> float:
    match = re.search(rf"{name}{{{labels}}} ([0-9.e+]+)", text)
    assert match is not None, f"no {name}{{{labels}}}"
    return float(match.group(1))


async def test_reads_after_a_request_are_fresh(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    """Used as people and tests use them, the routes show what was just done."""
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        params = {"key": RTB_KEY, "publisher_id": "p", "caller_number": "+18558485518"}
        seen = []
        for _ in range(3):
            await client.post(gw + "/rtbs.json", params=params)
            stats = (await client.get(gw + "/stats")).json()
            seen.append(stats["windows"]["10s"]["/rtbs.json"]["requests"])
        text = (await client.get(gw + "/metrics")).text
    assert seen == [1, 2, 3]
    assert _counter(text, "gateway_ops_answers_total", 'route="/stats",source="built"') == 3


async def test_past_the_burst_requests_are_answered_from_the_kept_body(
    sandbox_url: str,
) -> None:
    settings = Settings.from_env(
        {},
        rtb_upstream_url=sandbox_url,
        ops_refresh_ms=60_000,  # one build per minute after the burst: none in this test
        ops_max_rps=1000,
        ops_max_waiting=0,
    )
    async with serve_app(create_app(settings)) as gw, httpx.AsyncClient(timeout=10) as c:
        answers = [await c.get(gw + "/stats") for _ in range(30)]
        statuses = {r.status_code for r in answers}
        bodies = {r.content for r in answers[FRESH_BUILDS - 1 :]}
        text = (await c.get(gw + "/metrics")).text
    assert statuses == {200}
    assert len({r.content for r in answers[:FRESH_BUILDS]}) == FRESH_BUILDS  # each built anew
    assert len(bodies) == 1  # then the last build, kept
    built = _counter(text, "gateway_ops_answers_total", 'route="/stats",source="built"')
    kept = _counter(text, "gateway_ops_answers_total", 'route="/stats",source="kept"')
    assert (built, kept) == (FRESH_BUILDS, 30 - FRESH_BUILDS)


async def test_past_the_waiting_room_ops_requests_get_503_and_probes_do_not(
    sandbox_url: str,
) -> None:
    settings = Settings.from_env({}, rtb_upstream_url=sandbox_url, ops_max_rps=1, ops_max_waiting=0)
    async with serve_app(create_app(settings)) as gw, httpx.AsyncClient(timeout=10) as c:
        first = await c.get(gw + "/metrics")
        shed = await asyncio.gather(*(c.get(gw + p) for p in ("/stats", "/metrics", "/stats")))
        probes = [await c.get(gw + path) for path in ("/healthz", "/readyz") for _ in range(5)]
        ping = await c.post(
            gw + "/rtbs.json",
            params={"key": RTB_KEY, "publisher_id": "p", "caller_number": "+18558485518"},
        )
    assert first.status_code == 200
    for r in shed:
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"] == "overloaded"
        assert "/stats and /metrics" in r.json()["message"]
    assert {r.status_code for r in probes} == {200}
    assert ping.status_code == 200
