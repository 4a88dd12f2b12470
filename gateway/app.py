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
from gateway.errors import GatewayError, HttpError, MethodNotAllowed, NotFound
from gateway.health import DrainState, healthz, readyz
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.middleware import RequestMiddleware
from gateway.openapi import openapi_endpoint
from gateway.protect.breaker import CircuitBreaker
from gateway.protect.guard import Guard, build_guard
from gateway.protect.shedding import ProtectMiddleware
from gateway.rtb.endpoints import RtbFastLane, confirm_reservation, create_reservation
from gateway.shield.base import Shield
from gateway.shield.build import build_shield
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


def default_shield(settings: Settings, metrics: Metrics) -> Shield:
    """The shield the settings ask for (in-process, or Redis when GATEWAY_REDIS_URL is set)."""
    return build_shield(settings, metrics)


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
    make_shield = shield_factory or default_shield

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
        )
        guard, guard_redis = _guard(settings, metrics)
        shield = make_shield(settings, metrics)
        await rtb.start()
        await shield.start()
        lookups = await start_lookups(settings, metrics)
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
            if guard_redis is not None:
                await guard_redis.aclose()
                pool = getattr(guard_redis, "connection_pool", None)
                if pool is not None:  # a pool handed to Redis() is not closed with it
                    await pool.disconnect()
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


def _guard(settings: Settings, metrics: Metrics) -> tuple[Guard, Any | None]:
    """The allow-list and rate limits, with a Redis client of their own when limits are
    set and ``GATEWAY_REDIS_URL`` is (so they hold across replicas)."""
    redis = None
    if settings.redis_url is not None and (
        settings.rate_limit_per_publisher.strip() or settings.rate_limit_per_key.strip()
    ):
        from gateway.shield.redis import build_client

        redis = build_client(
            settings.redis_url.reveal(), timeout_s=settings.redis_timeout_s, max_connections=64
        )
    guard = build_guard(
        settings,
        redis=redis,
        on_refusal=metrics.protect_refusal,
        on_fallback=metrics.rate_limit_fallbacks.inc,
    )
    return guard, redis


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own HTTP errors (no route, wrong method) in the gateway's JSON shape.

    Unexpected exceptions are not handled here: RequestMiddleware is the one 500 path
    (it logs once, with the request id)."""
    assert isinstance(exc, HTTPException)
    error: GatewayError
    if exc.status_code == 404:
        error = NotFound(headers=exc.headers)
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"{request.method} is not allowed here", headers=exc.headers)
    else:
        error = HttpError(exc.status_code, str(exc.detail), headers=exc.headers)
    return error.response()
