"""429 under concurrency (deterministic: held requests stay in flight), the forcing knobs,
and the record of every Core API request that reached the sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.sandbox.api.state import CoreApiState
from tests.sandbox.conftest import AUTH, parse_xml


def _core(app: Any) -> CoreApiState:
    return app.state.core_api


async def _configure(client: httpx.AsyncClient, url: str, **config: Any) -> None:
    response = await client.post(f"{url}/_sandbox/config", json=config)
    assert response.status_code == 200, response.text


async def test_too_many_in_flight_get_429_with_retry_after(
    sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    core = _core(app)
    await _configure(client, url, core_api_max_concurrency=3)
    core.hold()
    tasks = [
        asyncio.create_task(client.get(f"{url}/targets/{6588 + i % 6}.json?{AUTH}"))
        for i in range(10)
    ]
    await core.wait_in_flight(3)
    rejected: list[httpx.Response] = []
    pending = set(tasks)
    while len(rejected) < 7:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        rejected += [t.result() for t in done]
    assert core.in_flight == 3
    assert [r.status_code for r in rejected] == [429] * 7
    assert all(r.headers["retry-after"] == "1" for r in rejected)
    assert all(isinstance(r.json()["error"], str) for r in rejected)
    core.release()
    admitted = await asyncio.gather(*pending)
    assert [r.status_code for r in admitted] == [200] * 3
    stats = (await client.get(f"{url}/_sandbox/core_api/stats")).json()
    assert stats["max_in_flight"] == 3
    assert stats["rejected_429"] == 7
    assert stats["in_flight"] == 0
    assert len(core.received) == 10


async def test_default_limit_is_ten(sandbox: tuple[str, Any], client: httpx.AsyncClient) -> None:
    url, app = sandbox
    core = _core(app)
    await client.post(f"{url}/_sandbox/core_api/hold")
    tasks = [asyncio.create_task(client.get(f"{url}/company.json?{AUTH}")) for _ in range(12)]
    await core.wait_in_flight(10)
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    while len(done) < 2:
        more, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        done |= more
    assert [t.result().status_code for t in done] == [429, 429]
    assert (await client.get(f"{url}/_sandbox/core_api/stats")).json()["held"] is True
    await client.post(f"{url}/_sandbox/core_api/release")
    assert {r.status_code for r in await asyncio.gather(*pending)} == {200}


async def test_forced_429s_count_down(sandbox: tuple[str, Any], client: httpx.AsyncClient) -> None:
    url, _ = sandbox
    await _configure(client, url, core_api_429=2, core_api_retry_after_s=7)
    first = await client.get(f"{url}/calls.json?{AUTH}")
    second = await client.get(f"{url}/affiliates.xml?{AUTH}")
    third = await client.get(f"{url}/calls.json?{AUTH}")
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["retry-after"] == second.headers["retry-after"] == "7"
    assert parse_xml(second.content).findtext("error")
    assert (await client.get(f"{url}/_sandbox/config")).json()["core_api_429"] == 0


async def test_forced_status(sandbox: tuple[str, Any], client: httpx.AsyncClient) -> None:
    url, _ = sandbox
    await _configure(client, url, core_api_status=503)
    response = await client.get(f"{url}/calls.json?{AUTH}")
    assert response.status_code == 503
    assert response.json() == {"error": "sandbox error 503"}
    rtb = await client.get(f"{url}/healthz")
    assert rtb.status_code == 200


async def test_delay_keeps_requests_in_flight(
    sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    await _configure(client, url, core_api_delay_ms=100)
    task = asyncio.create_task(client.get(f"{url}/calls.json?{AUTH}"))
    await _core(app).wait_in_flight(1)
    assert (await task).status_code == 200
    assert _core(app).in_flight == 0


@pytest.mark.parametrize(
    "config",
    [
        {"core_api_429": -1},
        {"core_api_429": "3"},
        {"core_api_max_concurrency": 0},
        {"core_api_delay_ms": 60_001},
        {"core_api_status": 42},
        {"core_api_retry_after_s": True},
    ],
)
async def test_bad_knobs_are_400(
    sandbox: tuple[str, Any], client: httpx.AsyncClient, config: dict[str, Any]
) -> None:
    url, _ = sandbox
    response = await client.post(f"{url}/_sandbox/config", json=config)
    assert response.status_code == 400
    assert next(iter(config)) in response.json()["error"]
    assert (await client.get(f"{url}/_sandbox/config")).json() == {}


async def test_every_core_request_is_recorded_even_unknown_paths(
    sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    await client.get(f"{url}/calls.json?{AUTH}&page=2")
    await client.get(f"{url}/calls/..%2F..%2Fetc%2Fpasswd.json?{AUTH}")
    await client.get(f"{url}/nothing/here")
    await client.post(f"{url}/affiliates.json?{AUTH}", json={"affiliate": {"afid": "x1"}})
    await client.get(f"{url}/healthz")
    await client.get(f"{url}/_sandbox/config")
    await client.post(
        f"{url}/rtbs.json",
        params={"key": "k", "publisher_id": "p", "caller_number": "+18558485518"},
    )
    seen = (await client.get(f"{url}/_sandbox/core_api/requests")).json()
    assert [(r["method"], r["path"], r["status"]) for r in seen] == [
        ("GET", "/calls.json", 200),
        ("GET", "/calls/../../etc/passwd.json", 404),
        ("GET", "/nothing/here", 404),
        ("POST", "/affiliates.json", 201),
    ]
    assert seen[0]["query"] == f"{AUTH}&page=2"
    assert seen[1]["raw_path"] == "/calls/..%2F..%2Fetc%2Fpasswd.json"
    assert app.state.sandbox.core_received is _core(app).received
    assert len(app.state.sandbox.received) == 1  # the RTB ping, recorded apart
    await client.delete(f"{url}/_sandbox/core_api/requests")
    assert (await client.get(f"{url}/_sandbox/core_api/requests")).json() == []
