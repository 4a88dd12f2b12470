"""Serving ASGI apps on real loopback sockets inside the test's event loop,
and running whole gateway processes for signal and multi-replica tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import uvicorn

from gateway.config import Settings
from gateway.wire.protocol import configure
from tests.support.ports import free_port, listening_socket

# The limits production runs with (Settings' defaults), on the production protocol.
_DEFAULTS = Settings()


@contextlib.asynccontextmanager
async def serve_app(app: Any, *, lifespan: str = "on") -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free port; yield its base URL; shut down cleanly.

    The protocol is the gateway's own (gateway/wire/protocol.py: head limits, timers,
    coalesced writes) with the default limits, as ``gateway serve`` runs it; the event
    loop is the test's own."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan=lifespan,
        loop="asyncio",
        http=configure(
            max_head_bytes=_DEFAULTS.max_header_bytes,
            request_timeout_s=_DEFAULTS.client_timeout_s,
            max_connections=_DEFAULTS.max_connections,
        ),
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        # Startup (lifespan) finishes before `started`; the socket already listens.
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


class GatewayProcess:
    """``python -m gateway serve`` as a child process, for SIGTERM/SIGKILL tests."""

    def __init__(self, env: Mapping[str, str], *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        full_env.update({"GATEWAY_LOG_FORMAT": "json", "GATEWAY_DRAIN_DELAY_S": "0"})
        full_env.update(env)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *args,
            ],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                _out, err = self.proc.communicate()
                raise RuntimeError(f"gateway exited {self.proc.returncode}: {err.decode()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("gateway did not become ready")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        out, err = self.proc.communicate(timeout=10)
        return out.decode(errors="replace"), err.decode(errors="replace")
