"""Reading a gateway's ledger from outside, as an operator would: the admin export."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx


async def export(client: httpx.AsyncClient, gw: str, **params: Any) -> list[dict[str, Any]]:
    resp = await client.get(f"{gw}/admin/ledger.ndjson", params=params)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in resp.text.splitlines()]


async def wait_rows(
    client: httpx.AsyncClient, gw: str, count: int, timeout_s: float = 10.0, **params: Any
) -> list[dict[str, Any]]:
    """Poll the export until it holds ``count`` rows (the writer batches every 100 ms)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        rows = await export(client, gw, limit=1_000_000, **params)
        if len(rows) >= count or loop.time() > deadline:
            return rows
        await asyncio.sleep(0.05)
