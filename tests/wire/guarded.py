"""Serving an app behind the gateway's guarded HTTP protocol, with test-sized limits."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from gateway.wire import protocol as connection
from tests.support.ports import listening_socket


@contextlib.asynccontextmanager
async def serve_guarded(
    app: Any,
    *,
    max_head_bytes: int = 4096,
    request_timeout_s: float = 0.5,
    max_connections: int = 1000,
    timeout_keep_alive: int = 75,
    lifespan: str = "off",
    send_buffer: int | None = None,
) -> AsyncIterator[tuple[int, list[str]]]:
    """Serve ``app`` on a free port with the guarded protocol; yield (port, refusals).

    ``send_buffer``: the kernel's send buffer of every accepted connection (inherited
    from the listening socket), small to make a non-reading client back up at once."""
    refusals: list[str] = []
    protocol = connection.configure(
        max_head_bytes=max_head_bytes,
        request_timeout_s=request_timeout_s,
        max_connections=max_connections,
        on_refusal=refusals.append,
    )
    sock = listening_socket()
    if send_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan=lifespan,
        loop="asyncio",
        http=protocol,
        timeout_keep_alive=timeout_keep_alive,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        yield sock.getsockname()[1], refusals
    finally:
        server.should_exit = True
        await task
        sock.close()
