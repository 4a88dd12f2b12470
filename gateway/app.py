"""create_app: the one composition root.

Routes, middleware, exception rendering and the lifespan that builds every pooled
resource (HTTP clients, shield store, metrics) live here and only here; handlers receive
them through the lifespan state (``request.state.res``).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway import __version__
from gateway.config import Settings
from gateway.core_api.endpoints import core_api_routes
from gateway.core_api.lookups import start_lookups
from gateway.errors import GatewayError, error_response
from gateway.health import DrainState, healthz, readyz
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.middleware import RequestMiddleware
from gateway.openapi import openapi_endpoint
from gateway.protect.breaker import CircuitBreaker
from gateway.protect.guard import Guard, build_guard
from gateway.protect.shedding import ProtectMiddleware
from gateway.redis import RedisSeam
from gateway.rtb.data_writing import data_writing
from gateway.rtb.endpoints import RtbFastLane, confirm_reservation, create_reservation
from gateway.shield.base import Shield
from gateway.shield.build import build_seam, build_shield
from gateway.state import Resources
from gateway.status import stats_endpoint, status_endpoint
from gateway.upstream.rtb import RtbClient

log = logging.getLogger("gateway")

ShieldFactory = Callable[[Settings, Metrics], Shield]


async def metrics_endpoint(request: Request) -> Response:
    res: Resources = request.state.res
    return Response(res.metrics.render(), media_type=CONTENT_TYPE)


def rtb_routes() -> list[BaseRoute]:
    return [
        Route("/rtbs.json", create_reservation, methods=["POST"]),
        Route("/rtbs/{uuid}.json", confirm_reservation, methods=["PUT", "PATCH"]),
        Route("/data_writing", data_writing, methods=["POST"]),
        Route("/data_writing/{key}", data_writing, methods=["GET"]),
    ]


def ops_routes() -> list[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/stats", stats_endpoint, methods=["GET"]),
        Route("/status", status_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
    ]


def create_app(
    settings: Settings,
    *,
    drain: DrainState | None = None,
    shield_factory: ShieldFactory | None = None,
    metrics_dir: str | None = None,
) -> Starlette:
    """Build the gateway. ``drain`` is shared with the server's SIGTERM handler;
    ``metrics_dir`` is the multiprocess metrics directory when running several workers."""
    metrics = Metrics(multiprocess_dir=metrics_dir)
    drain = drain or DrainState()
    make_shield = shield_factory

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        breaker = CircuitBreaker(
            "rtb",
            failures=settings.breaker_failures,
            open_s=settings.breaker_open_s,
            max_in_flight=settings.rtb_max_connections,
            on_refusal=metrics.protect_refusal,
            on_state=metrics.breaker_state("rtb"),
        )
        rtb = RtbClient(
            settings.rtb_upstream_url,
            max_connections=settings.rtb_max_connections,
            observe=metrics.observe_upstream("rtb"),
            user_agent=f"rtb-gateway/{__version__}",
            breaker=breaker,
            max_answer_bytes=settings.rtb_max_answer_bytes,
            data_writing_url=settings.data_writing_url,
            observe_data_writing=metrics.observe_upstream("data_writing"),
        )
        # The one Redis seam of this process: shield, rate limits and lookup cache share
        # its pool, its ping-path client and its skip-after-failures breaker.
        seam = build_seam(settings)
        guard = _guard(settings, metrics, seam)
        shield = (
            make_shield(settings, metrics)
            if make_shield is not None
            else build_shield(settings, metrics, seam)
        )
        await rtb.start()
        if seam is not None:
            await seam.start()
        await shield.start()
        lookups = await start_lookups(settings, metrics, seam)
        metrics.track_upstream_pool("rtb", lambda: rtb.connections_in_use)
        metrics.track_upstream_pool("core_api", lambda: lookups.client.in_flight)
        await metrics.start()
        res = Resources(
            settings=settings,
            metrics=metrics,
            drain=drain,
            rtb=rtb,
            shield=shield,
            lookups=lookups,
            guard=guard,
        )
        app.state.res = res
        # Everything built so far lives as long as the process: move it out of the cycle
        # collector's way so full collections (pauses on the ping path) stay short.
        gc.freeze()
        drain.ready = True
        log.info("started", extra={"version": __version__})
        try:
            yield {"res": res}
        finally:
            drain.ready = False
            await shield.close()
            await lookups.close()
            await rtb.close()
            if seam is not None:
                await seam.close()
            await metrics.close()
            log.info("stopped")

    # Core API routes last: the RTB and ops routes always win a match.
    routes = [*rtb_routes(), *ops_routes(), *core_api_routes()]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            GatewayError: _gateway_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
    )
    # A gateway answers 404, never a redirect built from the client's Host header.
    app.router.redirect_slashes = False
    app.state.drain = drain
    app.state.metrics = metrics
    # Innermost: pings skip the router and exception layers (the hot path).
    reserve_route = next(r for r in routes if isinstance(r, Route) and r.path == "/rtbs.json")
    app.add_middleware(RtbFastLane, route=reserve_route)
    # Inner to RequestMiddleware, so requests it sheds are still counted and logged.
    app.add_middleware(
        ProtectMiddleware,
        max_in_flight=settings.max_in_flight,
        max_query_bytes=settings.max_query_bytes,
        on_refusal=metrics.protect_refusal,
    )
    app.add_middleware(RequestMiddleware, metrics=metrics, routes=routes)
    return app


def _guard(settings: Settings, metrics: Metrics, seam: RedisSeam | None) -> Guard:
    """The allow-list and rate limits; limits are kept in Redis (over the process's seam)
    when it is there, so they hold across replicas."""
    limits = settings.rate_limit_per_publisher.strip() or settings.rate_limit_per_key.strip()
    return build_guard(
        settings,
        redis=seam if limits else None,
        on_refusal=metrics.protect_refusal,
        on_fallback=metrics.rate_limit_fallbacks.inc,
    )


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return exc.response()


_HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_ERRORS.get(exc.status_code, "http_error")
    message = "no such route" if exc.status_code == 404 else str(exc.detail)
    if exc.status_code == 405:
        message = f"{request.method} is not allowed here"
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.error(
        "unhandled error", exc_info=exc, extra={"request_id": request.scope.get("request_id")}
    )
    return error_response(500, "internal_error", "the gateway failed; see its logs")
