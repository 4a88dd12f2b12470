"""GATEWAY_RTB_CALLER_NUMBER=optional: pings without a caller number are forwarded every
time, never shielded (``X-Shield: none``) and not counted as shield lookups; by default
they are refused with 422 and nothing is forwarded."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.conftest import RTB_KEY, MakeGateway

PING = {"key": RTB_KEY, "publisher_id": "p1", "age": "39"}


def _shield_lookups(metrics: str) -> float:
    return sum(
        float(value)
        for value in re.findall(r"^gateway_shield_lookups_total\{[^}]*\} (\S+)$", metrics, re.M)
    )


async def test_optional_caller_pings_are_forwarded_every_time(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    upstream_url, upstream = sandbox
    async with make_gateway(rtb_upstream_url=upstream_url, rtb_caller_number="optional") as gw:
        answers = [await client.post(f"{gw}/rtbs.json", json=PING) for _ in range(2)]
        metrics = (await client.get(f"{gw}/metrics")).text
        # A ping with a caller still goes through the shield on the same gateway.
        shielded = await client.post(
            f"{gw}/rtbs.json", json={**PING, "caller_number": "+18558485518"}
        )
    received = [r for r in upstream.state.sandbox.received if r["path"] == "/rtbs.json"]
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.headers["x-shield"] for a in answers] == ["none", "none"]
    assert all("retreaver_ping_shield" not in a.json() for a in answers)
    assert answers[0].json()["uuid"] != answers[1].json()["uuid"]
    assert [r["fields"] for r in received[:2]] == [PING, PING]  # no caller_number invented
    assert _shield_lookups(metrics) == 0
    assert shielded.headers["x-shield"] == "miss"
    assert len(received) == 3


async def test_by_default_a_ping_without_a_caller_is_422_and_not_forwarded(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    upstream_url, upstream = sandbox
    async with make_gateway(rtb_upstream_url=upstream_url) as gw:
        answers = [await client.post(f"{gw}/rtbs.json", json=PING) for _ in range(2)]
    assert [a.status_code for a in answers] == [422, 422]
    assert all(a.json()["fields"] == {"caller_number": "is required"} for a in answers)
    assert list(upstream.state.sandbox.received) == []


async def test_an_invalid_caller_is_refused_even_when_optional(
    make_gateway: MakeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    upstream_url, upstream = sandbox
    async with make_gateway(rtb_upstream_url=upstream_url, rtb_caller_number="optional") as gw:
        answer = await client.post(f"{gw}/rtbs.json", json={**PING, "caller_number": "12345"})
    assert answer.status_code == 422
    assert set(answer.json()["fields"]) == {"caller_number"}
    assert list(upstream.state.sandbox.received) == []
