"""The secret canary through every protection's refusal (extends
tests/observe/test_canary.py, which covers the routes and upstream failures).

The canary is an RTB key refused by the allow-list, rate limited (with its counters in
Redis) and refused by an open breaker; it must appear in no answer, header, log record,
metric or Redis key.
"""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

import httpx
import pytest

from gateway.config import Secret
from tests.conftest import MakeGateway
from tests.support.redis_server import RedisServer

CANARY = "cnry" + uuid.uuid4().hex
ALLOWED_CANARY = "cnry" + uuid.uuid4().hex


def redis_keys(server: RedisServer) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        sock.sendall(b"KEYS *\r\n")
        return sock.recv(65536)


async def test_canary_appears_nowhere_in_refusals(
    make_gateway: MakeGateway,
    sandbox: tuple[str, Any],
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url, app = sandbox
    seen: list[httpx.Response] = []
    async with (
        make_gateway(
            rtb_upstream_url=url,
            redis_url=Secret(redis_server.url),
            rtb_allowed_keys=Secret(ALLOWED_CANARY),
            rate_limit_per_key="2/h",
            rate_limit_per_publisher="100/h",
            breaker_failures=2,
            breaker_open_s=30,
        ) as gw,
        httpx.AsyncClient(timeout=10) as client,
    ):

        async def ping(key: str, n: int, **extra: str) -> None:
            params = {"key": key, "publisher_id": "pub", "caller_number": f"+1855848{n:04d}"}
            seen.append(await client.post(f"{gw}/rtbs.json", params={**params, **extra}))

        await ping(CANARY, 5518)  # 403: not on the allow-list
        confirm = f"{gw}/rtbs/{uuid.uuid4()}.json"
        seen.append(await client.put(confirm, params={"key": CANARY, "status": "confirmed"}))
        await ping(ALLOWED_CANARY, 5519, sandbox_status="503")
        await ping(ALLOWED_CANARY, 5520, sandbox_status="503")  # the breaker opens
        await ping(ALLOWED_CANARY, 5521)  # 429: over the key's limit
        metrics = (await client.get(f"{gw}/metrics")).text
    statuses = [r.status_code for r in seen]
    assert statuses == [403, 403, 503, 503, 429]
    exposed = [r.text + str(r.headers) for r in seen]
    exposed += [metrics, redis_keys(redis_server).decode("latin-1")]
    # The gateway's own records (this test's httpx client logs its URLs, key and all).
    ours = [r for r in caplog.records if r.name.startswith(("gateway", "uvicorn", "aiohttp"))]
    exposed += [caplog.handler.format(r) + repr(vars(r)) for r in ours]
    for secret in (CANARY, ALLOWED_CANARY):
        assert not [text for text in exposed if secret in text]
    # Only the allowed key's two pings went upstream, carrying it (that is their purpose).
    assert [r["fields"]["key"] for r in app.state.sandbox.received] == [ALLOWED_CANARY] * 2
