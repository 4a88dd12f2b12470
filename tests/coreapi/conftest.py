"""Fixtures for the Core API mirror: the sandbox's Core API state, a gateway whose app the
test can inspect, and a raw HTTP/1.1 client for request targets no library would send."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway.app import create_app
from gateway.config import Settings
from gateway.observe.metrics import Metrics
from gateway.sandbox.api import CoreApiState
from tests.support.servers import serve_app

KEY = "woofwoofwoof"
AUTH = f"api_key={KEY}&company_id=1"

ServeGateway = Callable[..., contextlib.AbstractAsyncContextManager[tuple[str, Any]]]


@pytest.fixture
def core(sandbox: tuple[str, Any]) -> CoreApiState:
    return sandbox[1].state.core_api


@pytest.fixture
def serve_gateway(sandbox: tuple[str, Any]) -> ServeGateway:
    """``async with serve_gateway(**settings) as (url, metrics)``; Core API = the sandbox."""

    @contextlib.asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[tuple[str, Any]]:
        values: dict[str, Any] = {
            "rtb_upstream_url": sandbox[0],
            "core_api_url": sandbox[0],
            "core_api_v2_url": sandbox[0],
        }
        values.update(overrides)
        settings = Settings.from_env({}, **values)
        metrics = Metrics()
        async with serve_app(create_app(settings, metrics=metrics)) as url:
            yield url, metrics

    return serve


async def raw_request(
    base_url: str,
    target: bytes,
    *,
    method: bytes = b"GET",
    headers: tuple[bytes, ...] = (),
    body: bytes = b"",
) -> tuple[int, dict[str, str], bytes]:
    """Send exactly ``METHOD target HTTP/1.1`` (and ``body``, framed by the caller's
    headers); return (status, headers, body)."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        head = [method + b" " + target + b" HTTP/1.1", f"Host: {parts.netloc}".encode()]
        head += [*headers, b"Connection: close"]
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
        await writer.wait_closed()
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    found: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return status, found, body
