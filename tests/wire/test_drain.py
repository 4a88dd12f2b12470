"""SIGTERM with a request in flight: readiness turns 503, nothing is dropped, exit 0."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import httpx

from tests.conftest import RTB_KEY
from tests.support.servers import GatewayProcess

PING = f"key={RTB_KEY}&publisher_id=pub&caller_number=%2B18558485518"


async def _until_status(client: httpx.AsyncClient, url: str, status: int) -> None:
    for _ in range(400):
        if (await client.get(url)).status_code == status:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{url} never answered {status}")


async def test_sigterm_drains_then_exits_zero(sandbox: tuple[str, Any]) -> None:
    url, app = sandbox
    gw = GatewayProcess({"GATEWAY_RTB_UPSTREAM_URL": url, "GATEWAY_DRAIN_DELAY_S": "1.5"})
    try:
        await asyncio.to_thread(gw.wait_ready)
        async with httpx.AsyncClient(timeout=15) as client:
            in_flight = asyncio.create_task(
                client.post(f"{gw.url}/rtbs.json?{PING}&sandbox_delay_ms=2500")
            )
            await app.state.sandbox.arrived.wait()
            gw.signal(signal.SIGTERM)
            await _until_status(client, f"{gw.url}/readyz", 503)
            # Still serving while load balancers take the pod out.
            during = await client.post(f"{gw.url}/rtbs.json?{PING}")
            assert during.status_code == 200
            finished = await in_flight
            assert finished.status_code == 200
            assert finished.json()["status"] == "reserved"
        assert await asyncio.to_thread(gw.wait, 30) == 0
    finally:
        _, err = gw.stop()
    assert "draining" in err
