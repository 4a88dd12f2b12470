"""Shared fixtures: every test talks to real servers on 127.0.0.1.

- ``redis_server``: a redis-server of this test session on a free port (flushed per test).
- ``sandbox_url``: the Retreaver sandbox served by uvicorn in the test's loop.
- ``make_gateway``: build and serve a gateway app for given settings, yield its URL.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.config import Settings
from gateway.sandbox.asgi import create_sandbox_app
from tests.support.redis_server import RedisServer
from tests.support.servers import serve_app

RTB_KEY = "7fc40342-f0a0-4e8f-bf09-b3887eedcb4a"


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(redis_session: RedisServer) -> RedisServer:
    if not redis_session.ping():  # a test killed it: bring it back for the next one
        redis_session.start()
    redis_session.flushall()
    return redis_session


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[str, Any]]:
    """(base URL, the sandbox app) so tests can read ``app.state.sandbox`` directly."""
    app = create_sandbox_app()
    async with serve_app(app) as url:
        yield url, app


@pytest.fixture
async def sandbox_url(sandbox: tuple[str, Any]) -> str:
    return sandbox[0]


MakeGateway = Callable[..., contextlib.AbstractAsyncContextManager[str]]


@pytest.fixture
def make_gateway() -> MakeGateway:
    """``async with make_gateway(rtb_upstream_url=..., **settings) as url``."""

    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[str]:
        env: dict[str, str] = {}
        settings = Settings.from_env(env, **overrides)
        async with serve_app(create_app(settings)) as url:
            yield url

    return make


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


@pytest.fixture(scope="session")
def postgres_session() -> Iterator[Any]:
    """One PostgreSQL of this test session (started on first use)."""
    from tests.support.postgres_server import PostgresServer

    server = PostgresServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def postgres(postgres_session: Any) -> Any:
    """The session's PostgreSQL, running (a test may have killed it)."""
    if postgres_session.proc is None or postgres_session.proc.poll() is not None:
        postgres_session.start()
    return postgres_session


@pytest.fixture
def postgres_url(postgres: Any, request: pytest.FixtureRequest) -> str:
    """A fresh database of its own for this test."""
    import re
    import uuid

    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:8]
    return postgres.create_database(name)
