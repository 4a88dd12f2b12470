"""Pure ASGI middleware: request id, timing, metrics and the access log.

Pure ASGI (never ``BaseHTTPMiddleware``) because it runs on every ping: it only wraps
``send`` to add two headers and note the status, and observes once at the end. The route
label is the template of the route Starlette matched (it writes ``endpoint`` into the
shared scope), looked up in a table built at start-up, so a raw path never becomes a label.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import Metrics

_REQUEST_ID_OK = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")

access_log = logging.getLogger("gateway.access")


class RequestMiddleware:
    """Adds ``X-Request-ID``, counts and times every HTTP request, logs one line each."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        route_names: Mapping[Any, str],
        log_access: bool = True,
        on_finish: Callable[[str, str, int, float], None] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.route_names = route_names
        self.log_access = log_access
        self.on_finish = on_finish
        self._children: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        request_id_bytes = request_id.encode("ascii")
        scope["request_id"] = request_id
        status = 500
        headers_sent = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, headers_sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers_sent = True
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id_bytes),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not headers_sent:
                status = 499 if status == 500 else status
            elapsed = time.perf_counter() - started
            route = self.route_names.get(scope.get("endpoint"), "unmatched")
            method = scope["method"]
            self._observe(route, method, status, elapsed)
            if self.on_finish is not None:
                self.on_finish(route, method, status, elapsed)
            if self.log_access and access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "route": route,
                        "method": method,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "request_id": request_id,
                        "shield": scope.get("shield_result"),
                    },
                )

    def _observe(self, route: str, method: str, status: int, elapsed: float) -> None:
        key = (route, method, status)
        counter = self._children.get(key)
        if counter is None:
            counter = self._children[key] = self.metrics.http_requests.labels(
                route, method if method in _METHODS else "OTHER", str(status)
            )
        counter.inc()
        hist = self._durations.get(route)
        if hist is None:
            hist = self._durations[route] = self.metrics.http_duration.labels(route)
        hist.observe(elapsed)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _REQUEST_ID_OK.fullmatch(value):
                return value.decode("ascii")
            return None
    return None
