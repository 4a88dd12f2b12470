"""Driving reconciliation from outside: pings through a gateway, calls in the sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gateway.config import Secret
from tests.conftest import RTB_KEY

# Reservations live 1 s, calls come 300 ms after, no grace or overlap: a pass decides
# everything about a second after the pings, so tests wait on outcomes, not minutes.
FAST = dict(
    reconcile_api_key=Secret("barkbarkbark"),
    reconcile_company_id="1",
    reconcile_grace_s=0.0,
    reconcile_overlap_s=0.0,
    reconcile_interval_s=3600.0,
)


def gateway_settings(sandbox_url: str, **more: Any) -> dict[str, Any]:
    base = dict(rtb_upstream_url=sandbox_url, core_api_url=sandbox_url, core_api_v2_url=sandbox_url)
    return {**base, **FAST, **more}


async def ping(client: httpx.AsyncClient, gw: str, caller: str, publisher: str = "pub-1") -> Any:
    resp = await client.post(
        f"{gw}/rtbs.json",
        json={"key": RTB_KEY, "publisher_id": publisher, "caller_number": caller},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def configure(client: httpx.AsyncClient, sandbox_url: str, **config: Any) -> None:
    resp = await client.post(f"{sandbox_url}/_sandbox/config", json=config)
    assert resp.status_code == 200, resp.text


async def reconcile_until(
    client: httpx.AsyncClient, gw: str, settled: int, timeout_s: float = 15.0
) -> list[dict[str, Any]]:
    """POST /admin/reconcile until ``settled`` reservations got an outcome in total.

    Reservations end not_called only once their expiry has passed, which is wall time:
    the loop polls for it (bounded), it does not guess a sleep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    summaries: list[dict[str, Any]] = []
    while True:
        resp = await client.post(f"{gw}/admin/reconcile")
        assert resp.status_code == 200, resp.text
        summaries.append(resp.json())
        if sum(s["settled"] for s in summaries) >= settled or loop.time() > deadline:
            return summaries
        await asyncio.sleep(0.1)
