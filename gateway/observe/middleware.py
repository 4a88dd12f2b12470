"""Pure ASGI middleware: request id, timing, metrics, ``/stats``, the access log, and (for
publisher routes) the outcome tap: ``X-Outcome`` and the ledger event (gateway/ledger/tap.py).

Pure ASGI (never ``BaseHTTPMiddleware``) because it runs on every ping: it only wraps
``send`` to add a header and note the status, and observes once at the end, through label
children cached per (route, method, status). The route label is the template of the route
Starlette matched (the router leaves the route object in ``scope["route"]``), looked up
in a table built at start-up, so a raw path never becomes a label.

It is also the last line for unexpected exceptions: it logs them once (with the request
id; the log formatter masks secrets in the traceback) and answers a plain JSON 500 that
carries ``X-Request-ID``, so no framework or server prints its own copy of the traceback.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import InternalError, prerender, send_error
from gateway.ledger.tap import UPSTREAM_ANSWER, OutcomeTap, Tapped
from gateway.observe.access_log import AccessLog
from gateway.observe.metrics import Metrics
from gateway.observe.stats import RequestContext, current_request

_REQUEST_ID_OK = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

log = logging.getLogger("gateway")

_INTERNAL_ERROR = prerender(InternalError)


def route_templates(routes: Iterable[BaseRoute], prefix: str = "") -> dict[int, str]:
    """``id(route) -> template`` for every route, with mount prefixes, walked once."""
    table: dict[int, str] = {}
    for route in routes:
        if isinstance(route, Mount):
            table[id(route)] = prefix + route.path + "/{path:path}"
            table.update(route_templates(route.routes, prefix + route.path))
        elif isinstance(route, Route):
            table[id(route)] = prefix + route.path
        else:
            path = getattr(route, "path", None)
            if isinstance(path, str):
                table[id(route)] = prefix + path
    return table


class RequestMiddleware:
    """Adds ``X-Request-ID``; counts, times and logs every HTTP request once."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        routes: Iterable[BaseRoute] = (),
        log_access: bool = True,
        access: AccessLog | None = None,
        tap: OutcomeTap | None = None,
    ) -> None:
        self.app = app
        self.tap = tap
        self.metrics = metrics
        self.stats = metrics.stats
        self.log_access = log_access
        # The app builds it (with its settings and this process's log destination); a
        # bare middleware logs records, as an app under someone else's logging would.
        self.access = access if access is not None else AccessLog(None)
        self._templates = route_templates(routes)
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[str, Any] = {}
        self._in_flight = metrics.in_flight
        self._ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _incoming_request_id(scope)
        request_id = incoming or self._ids.next()
        request_id_bytes = request_id.encode("ascii")
        scope["request_id"] = request_id
        ctx = RequestContext(request_id)
        token = current_request.set(ctx)
        status = 0
        tap = self.tap
        route = tap.route(scope["method"], scope["path"]) if tap is not None else None
        held: Message | None = None
        tapped: Tapped | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, held, tapped
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id_bytes),
                ]
                if route is not None:
                    held = message  # X-Outcome is read off the body: start waits for it
                    return
            elif held is not None:
                start, held = held, None
                tapped = tap.answered(  # type: ignore[union-attr]
                    scope, route, start, message.get("body", b""), ctx.upstream_seconds
                )
                await send(start)
            await send(message)

        self._in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            status = status or 499  # the server gave up on the client before we answered
            raise
        except Exception as exc:
            log.error(
                "unhandled error",
                exc_info=exc,
                extra={"route": self._route(scope), "request_id": request_id},
            )
            if status:  # the answer had started: all we can do is drop the connection
                raise
            # Through the wrapper: it adds X-Request-ID, and X-Outcome on publisher routes.
            await send_error(send_wrapper, _INTERNAL_ERROR)
        finally:
            self._in_flight.dec()
            current_request.reset(token)
            elapsed = time.perf_counter() - started
            self._finish(scope, status or 500, elapsed, ctx, request_id, incoming is not None)
            if tapped is not None:
                tap.record(scope, route, tapped, elapsed)  # type: ignore[union-attr,arg-type]

    def answer_now(
        self, scope: Scope, body: bytes, answer: Callable[[Scope, bytes], Message | None]
    ) -> tuple[Message, bytes] | None:
        """What :meth:`__call__` does for a request ``answer`` completes without awaiting.

        The wire layer's way for shield hits (gateway/ping/hit_lane.py): ``answer`` is the
        endpoint's synchronous answer (its ``http.response.start``, the body in
        ``scope``), or None to send the request the ASGI way untouched. The same request
        id, ``X-Request-ID`` and ``X-Outcome`` headers in the same order, metrics,
        ``/stats``, access line and ledger event as an answer sent through ``send``."""
        started = time.perf_counter()
        start = answer(scope, body)  # nothing on a hit's way logs or times an upstream
        if start is None:
            return None  # a miss: the ASGI way reads the request id, not this
        incoming = _incoming_request_id(scope)
        request_id = incoming or self._ids.next()
        scope["request_id"] = request_id
        start["headers"].append((b"x-request-id", request_id.encode("ascii")))
        body = scope[UPSTREAM_ANSWER].body
        tap = self.tap
        route = tap.route(scope["method"], scope["path"]) if tap is not None else None
        tapped = None
        if route is not None:
            tapped = tap.answered(scope, route, start, body, None)  # type: ignore[union-attr]
        elapsed = time.perf_counter() - started
        self._finish(
            scope, start["status"], elapsed, RequestContext(request_id), request_id, bool(incoming)
        )
        if tapped is not None:
            tap.record(scope, route, tapped, elapsed)  # type: ignore[union-attr,arg-type]
        return start, body

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        template = self._templates.get(id(route))
        if template is None:
            # A route object outside the start-up table: its template is still code, so
            # still bounded. Remember it so this happens once.
            path = getattr(route, "path", None)
            template = self._templates[id(route)] = path if isinstance(path, str) else UNMATCHED
        return template

    def _finish(
        self,
        scope: Scope,
        status: int,
        elapsed: float,
        ctx: RequestContext,
        request_id: str,
        foreign_id: bool,
    ) -> None:
        route = self._route(scope)
        method = scope["method"]
        if method not in METHODS:
            method = "OTHER"
        key = (route, method, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.metrics.bind(
                self.metrics.http_requests, route, method, str(status)
            )
        counter.inc()
        hist = self._durations.get(route)
        if hist is None:
            hist = self._durations[route] = self.metrics.bind(self.metrics.http_duration, route)
        hist.observe(elapsed)
        shield = scope.get("shield_result")
        self.stats.record(route, status, elapsed, shield, ctx.upstream_seconds, ctx.upstream_errors)
        if self.log_access and self.access.enabled():
            self.access.write(
                route,
                method,
                status,
                elapsed,
                request_id,
                shield,
                ctx.upstream_seconds,
                foreign_id=foreign_id,
            )


class RequestIds:
    """32 hex characters: 16 random per process, then a counter.

    Unique across replicas and restarts for all practical purposes, and ~20x cheaper than
    ``uuid4().hex`` (one ``os.urandom`` call per request), which showed up in profiles.
    """

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _REQUEST_ID_OK.fullmatch(value):
                return value.decode("ascii")
            return None
    return None
