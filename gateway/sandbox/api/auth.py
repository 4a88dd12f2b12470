"""Pure-ASGI front of the Core API sandbox: record, throttle, delay, hold.

Every request that is not the RTB endpoint, ``/healthz`` or a ``/_sandbox/`` control
route counts as a Core API request, including paths no route knows: a gateway that
forwards a hostile path must show up in ``received`` even though the sandbox 404s it.

Order: record (the query as received) → a GET's form body merged into the query
(:mod:`.form_query`) → forced status / forced 429 (``core_api_429`` counts down) → concurrency
check (more than ``core_api_max_concurrency`` in flight → 429 with ``Retry-After``, as
Retreaver frowns on "highly concurrent requests") → delay → hold → the routes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.sandbox.api import knobs
from gateway.sandbox.api.get_forms import merge_get_form
from gateway.sandbox.api.render import MESSAGES, error, format_of
from gateway.sandbox.api.state import CoreApiState

_NOT_CORE = ("/_sandbox/", "/rtbs", "/data_writing")


def is_core_path(path: str) -> bool:
    return path != "/healthz" and not path.startswith(_NOT_CORE)


class CoreApiGuard:
    def __init__(
        self, app: ASGIApp, *, config: Callable[[], dict[str, Any]], core: CoreApiState
    ) -> None:
        self.app = app
        self._config = config  # the live /_sandbox/config dict (replaced on every POST)
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_core_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        core = self.core
        record: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "raw_path": (scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
            "query": scope.get("query_string", b"").decode("latin-1"),
            "at": time.time(),
            "status": None,
            # So tests can see the header reach the upstream (caller lists' Bearer secret).
            "authorization": next(
                (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"),
                None,
            ),
        }
        core.received.append(record)
        receive = await merge_get_form(scope, receive)

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            await send(message)

        config = self._config()
        fmt = format_of(scope["path"])
        status = knobs.knob(config, "core_api_status")
        if status is not None:
            await error(fmt, status, f"sandbox error {status}")(scope, receive, send_recording)
            return
        forced = knobs.knob(config, "core_api_429")
        if forced:
            config["core_api_429"] = forced - 1
            await self._too_many(config, fmt, scope, receive, send_recording)
            return
        if core.in_flight >= knobs.max_concurrency(config):
            await self._too_many(config, fmt, scope, receive, send_recording)
            return
        core.enter()
        try:
            delay = knobs.knob(config, "core_api_delay_ms")
            if delay:
                await asyncio.sleep(min(delay, knobs.MAX_DELAY_MS) / 1000)
            await core.wait_released()
            await self.app(scope, receive, send_recording)
        finally:
            core.leave()

    async def _too_many(
        self, config: dict[str, Any], fmt: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.core.rejected += 1
        headers = {"Retry-After": str(knobs.retry_after(config))}
        await error(fmt, 429, MESSAGES[429], headers)(scope, receive, send)
