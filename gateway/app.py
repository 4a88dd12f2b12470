"""create_app: the one composition root.

Everything expensive is built here, once, from plain values of the settings: the RTB
client and its breaker, the shield, the guard, the Core API client with its cache and
lookups, the metrics. Each endpoint receives exactly what it needs through its
constructor (as prebid-server's ``router.go`` builds the exchange and the endpoints), so
no handler reaches into a bag of resources. The lifespan only starts what needs an event
loop and closes everything (an ``AsyncExitStack``, in reverse order of starting).
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway import __version__
from gateway.auction.book import AuctionBook
from gateway.auction.counters import AuctionMetrics
from gateway.auction.desk import AuctionDesk
from gateway.auction.exchange import Auctioneer, AuctionResult
from gateway.auction.reservations import MemoryRouteStore, RedisRouteStore, RouteStore
from gateway.config import Settings
from gateway.coreapi.cache import LookupCache, MemoryLookupCache, RedisLookupCache
from gateway.coreapi.client import CoreApiClient
from gateway.coreapi.lookups import Lookups, per_process_concurrency
from gateway.coreapi.mirror import CoreApiEndpoints
from gateway.errors import GatewayError, HttpError, MethodNotAllowed, NotFound
from gateway.ledger.admin import admin_routes
from gateway.ledger.analytics import analytics_routes
from gateway.ledger.auction_legs import LegRecorder
from gateway.ledger.build import build_ledger
from gateway.ledger.reconcile import ReconcileMetrics, build_reconciler, reconcile_routes
from gateway.ledger.tap import OutcomeTap
from gateway.observe import logs
from gateway.observe.access_log import AccessLog
from gateway.observe.health import DrainState, Health
from gateway.observe.metrics import CONTENT_TYPE, Metrics
from gateway.observe.middleware import RequestMiddleware
from gateway.observe.ops_cache import FRESH_BUILDS, BuildBudget, CachedBody
from gateway.observe.status import StatsEndpoint, status_endpoint
from gateway.openapi import openapi_endpoint
from gateway.ping.data_writing import DataWriting
from gateway.ping.forwarder import Forwarder
from gateway.ping.front_door import ConfirmReservation, CreateReservation, RtbFastLane
from gateway.ping.hit_lane import find_lane
from gateway.protect.allowlist import KeyAllowList
from gateway.protect.breaker import CircuitBreaker
from gateway.protect.confirm_guard import ConfirmGuard
from gateway.protect.guard import Guard
from gateway.protect.ops_pacing import OpsPacer
from gateway.protect.ratelimit import RateLimiter
from gateway.protect.rules import parse_limits, read_keys_file, split_keys
from gateway.protect.shedding import ProtectMiddleware
from gateway.shield.base import Shield
from gateway.shield.memory_store import MemoryShieldStore
from gateway.shield.service import StoreShield
from gateway.wire.redis import Breaker, RedisSeam

log = logging.getLogger("gateway")

ShieldFactory = Callable[[Settings, Metrics], Shield]
USER_AGENT = f"rtb-gateway/{__version__}"
# The lookup cache shares Redis with the shield but is not on the ping path: a little
# more patience than the shield's tens of milliseconds.
LOOKUP_REDIS_TIMEOUT_FLOOR_S = 0.1


def create_app(
    settings: Settings,
    *,
    drain: DrainState | None = None,
    metrics: Metrics | None = None,
    shield_factory: ShieldFactory | None = None,
) -> Starlette:
    """Build the gateway. ``drain`` is shared with the server's SIGTERM handler and
    ``metrics`` with its connection limits (in multiprocess mode, built by the server)."""
    metrics = metrics if metrics is not None else Metrics()
    drain = drain if drain is not None else DrainState()
    rtb = Forwarder(
        settings.rtb_upstream_url,
        max_connections=settings.rtb_max_connections,
        observe=metrics.observe_upstream("rtb"),
        user_agent=USER_AGENT,
        max_answer_bytes=settings.rtb_max_answer_bytes,
        data_writing_url=settings.data_writing_url,
        observe_data_writing=metrics.observe_upstream("data_writing"),
        breaker=CircuitBreaker(
            "rtb",
            failures=settings.breaker_failures,
            open_s=settings.breaker_open_s,
            max_in_flight=settings.rtb_max_connections,
            on_refusal=metrics.protect_refusal,
            on_state=metrics.breaker_state("rtb"),
        ),
    )
    # The one Redis seam of this process: shield, rate limits and lookup cache share its
    # pool, its ping-path script client and its skip-after-failures breaker.
    seam = build_seam(settings)
    shield = (
        shield_factory(settings, metrics)
        if shield_factory is not None
        else build_shield(settings, metrics, seam)
    )
    guard = build_guard(settings, seam if _limits_set(settings) else None, metrics)
    core_api = CoreApiClient(
        settings.core_api_url,
        settings.core_api_v2_url,
        max_concurrency=per_process_concurrency(settings),
        timeout_s=settings.core_api_timeout_ms / 1000,
        max_retry_wait_s=settings.core_api_max_retry_wait_s,
        max_quiet_s=settings.core_api_max_quiet_s,
        max_answer_bytes=settings.core_api_max_answer_bytes,
        observe=metrics.observe_upstream("core_api"),
        user_agent=USER_AGENT,
    )
    lookups = Lookups(
        core_api,
        _lookup_cache(settings, metrics, seam),
        ttl_s=settings.lookup_cache_ttl_s,
        metrics=metrics,
    )
    metrics.track_upstream_pool("rtb", lambda: rtb.connections_in_use)
    metrics.track_upstream_pool("core_api", lambda: core_api.in_flight)

    ledger = build_ledger(settings, metrics)
    desk = build_auctions(
        settings, metrics, rtb, shield, seam, LegRecorder(ledger, settings.sub_id_tag)
    )
    rtb_parts: dict[str, Any] = dict(
        rtb=rtb,
        shield=shield,
        guard=guard,
        timeout_s=settings.rtb_timeout_s,
        max_body_bytes=settings.max_body_bytes,
        auctions=desk,
    )
    create = CreateReservation(**rtb_parts, caller_required=settings.rtb_caller_number_required)
    confirm = ConfirmReservation(**rtb_parts)
    data_writing = DataWriting(
        rtb=rtb,
        guard=guard,
        timeout_s=settings.rtb_timeout_s,
        max_body_bytes=settings.max_body_bytes,
    )
    core_endpoints = CoreApiEndpoints(
        lookups,
        core_api,
        allow_writes=settings.core_api_allow_writes,
        max_body_bytes=settings.max_body_bytes,
        trust_forwarded=settings.trust_forwarded_headers,
    )
    health = Health(drain)
    # /stats and /metrics under a flood: bodies kept between builds, requests paced.
    ops_pacer = OpsPacer(settings.ops_max_rps, settings.ops_max_waiting)
    reconcile_metrics = ReconcileMetrics(metrics)
    confirm_guard = ConfirmGuard(
        settings.confirm_guard,
        window=settings.confirm_guard_window,
        min_rate=settings.confirm_guard_min_rate,
        on_verdict=lambda verdict: reconcile_metrics.confirm_guard.labels(verdict).inc(),
    )
    guard.confirms = confirm_guard
    reconciler = build_reconciler(
        settings, ledger, core_api, reconcile_metrics, on_confirmed_outcome=confirm_guard.settled
    )
    admin_token = settings.admin_token.reveal() if settings.admin_token else None
    reserve_route = Route("/rtbs.json", create, methods=["POST"])
    # Core API routes last: the RTB and ops routes always win a match.
    routes: list[BaseRoute] = [
        reserve_route,
        Route("/rtbs/{uuid}.json", confirm.handle, methods=["PUT", "PATCH"]),
        Route("/data_writing", data_writing.handle, methods=["GET", "POST"]),
        Route("/data_writing/{key}", data_writing.handle, methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", _metrics_endpoint(metrics, _ops_budget(settings)), methods=["GET"]),
        Route(
            "/stats",
            StatsEndpoint(metrics, settings, drain, _ops_budget(settings), ledger.stats).handle,
            methods=["GET"],
        ),
        Route("/status", status_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint, methods=["GET"]),
        *admin_routes(ledger, admin_token),
        *analytics_routes(ledger, admin_token, settings.analytics_max_rows),
        *reconcile_routes(reconciler, admin_token),
        *core_endpoints.routes(),
    ]

    access = AccessLog(
        logs.destination(),
        sample=settings.access_log_sample,
        max_bytes=settings.access_log_buffer_bytes,
        on_drop=metrics.access_log_dropped.inc,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.push_async_callback(metrics.close)
            stack.callback(access.close)  # last: the lines of the final requests
            if seam is not None:  # closed last: the shield and the cache use it to the end
                await seam.start()
                stack.push_async_callback(seam.close)
            await rtb.start()
            stack.push_async_callback(rtb.close)
            await core_api.start()
            stack.push_async_callback(lookups.close)  # the cache, then the client
            await shield.start()
            stack.push_async_callback(shield.close)
            if desk is not None:
                await desk.book.start()
                stack.push_async_callback(desk.book.close)
                stack.push_async_callback(desk.close)  # late legs first, then their clients
            await ledger.start()
            stack.push_async_callback(ledger.close)  # flushes the queue
            if reconciler is not None:  # first to close: a pass needs the ledger and client
                await reconciler.start()
                stack.push_async_callback(reconciler.close)
            await metrics.start()
            # Everything built so far lives as long as the process: move it out of the
            # cycle collector's way so full collections (pauses on pings) stay short.
            gc.freeze()
            # Shield hits answered from the protocol (gateway/ping/hit_lane.py).
            app.state.hit_lane = (
                find_lane(app, settings.max_body_bytes) if settings.hit_lane else None
            )
            drain.ready = True
            log.info("started", extra={"version": __version__})
            try:
                yield
            finally:
                drain.ready = False
                app.state.hit_lane = None
        log.info("stopped")

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={GatewayError: _gateway_error, HTTPException: _http_error},
    )
    # A gateway answers 404, never a redirect built from the client's Host header.
    app.router.redirect_slashes = False
    # Innermost: pings skip the router and exception layers (the hot path).
    app.add_middleware(RtbFastLane, route=reserve_route)
    # Inner to RequestMiddleware, so requests it sheds are still counted and logged.
    app.add_middleware(
        ProtectMiddleware,
        max_in_flight=settings.max_in_flight,
        max_query_bytes=settings.max_query_bytes,
        on_refusal=metrics.protect_refusal,
        ops_pacer=ops_pacer,
    )
    # Outermost, with the outcome tap: X-Outcome and the ledger event for every
    # publisher answer, whoever wrote it.
    tap = OutcomeTap(
        ledger=ledger,
        count=metrics.outcome,
        sub_id_tag=settings.sub_id_tag,
        on_reserved=confirm_guard.reserved if settings.confirm_guard != "off" else None,
    )
    app.add_middleware(RequestMiddleware, metrics=metrics, routes=routes, access=access, tap=tap)
    return app


# -- small factories, each from plain values of the settings --------------------------------


def seam_breaker(settings: Settings) -> Breaker:
    """The one skip-Redis-after-failures breaker of a process."""
    return Breaker(settings.redis_bypass_after, settings.redis_bypass_ms / 1000)


def build_seam(settings: Settings) -> RedisSeam | None:
    """The process's one Redis seam, or ``None`` without ``GATEWAY_REDIS_URL``."""
    if settings.redis_url is None:
        return None
    return RedisSeam(
        settings.redis_url.reveal(),
        timeout_s=settings.redis_timeout_s,
        max_connections=settings.redis_max_connections,
        breaker=seam_breaker(settings),
    )


def build_shield(settings: Settings, metrics: Metrics, seam: RedisSeam | None = None) -> Shield:
    """No Redis seam: the in-process store (one replica; with ``--workers N`` each worker
    shields on its own). With it: the Redis store every replica shares, with a near-cache
    in front (``GATEWAY_SHIELD_NEAR_CACHE_SIZE``, 0 turns it off). The seam's breaker is
    the shield's: a failing Redis is skipped by shield, rate limits and lookup cache
    together."""
    if seam is None:
        store: Any = MemoryShieldStore(
            settings.shield_memory_max_entries, on_evict=metrics.shield_store_evicted.inc
        )
    else:
        from gateway.shield.redis_store import RedisShieldStore

        store = RedisShieldStore(seam, observe=metrics.observe_redis)
    return StoreShield(
        store,
        scope=settings.shield_scope,
        max_ttl_s=settings.shield_max_ttl_s,
        lease_ms=settings.shield_lease_ms,
        near_cache_size=settings.shield_near_cache_size,
        near_cache_ttl_ms=settings.shield_near_cache_ttl_ms,
        breaker=seam.breaker if seam is not None else seam_breaker(settings),
        metrics=metrics,
    )


def build_auctions(
    settings: Settings,
    metrics: Metrics,
    rtb: Forwarder,
    shield: Shield,
    seam: RedisSeam | None,
    record_legs: Callable[[AuctionResult], None] | None = None,
) -> AuctionDesk | None:
    """The auctions of ``GATEWAY_AUCTIONS_FILE`` (None without one). Each distinct
    destination upstream gets its own client, pool and breaker; the default upstream's is
    the gateway's own. Keys named by ``key_env`` are read from this process's
    environment, once per (re)load."""
    if settings.auctions_file is None:
        return None
    auction_metrics = AuctionMetrics(metrics)

    def make_client(url: str) -> Forwarder:
        return Forwarder(
            url,
            max_connections=settings.rtb_max_connections,
            observe=metrics.observe_upstream("rtb"),
            user_agent=USER_AGENT,
            max_answer_bytes=settings.rtb_max_answer_bytes,
            breaker=CircuitBreaker(
                "rtb",
                failures=settings.breaker_failures,
                open_s=settings.breaker_open_s,
                max_in_flight=settings.rtb_max_connections,
                on_refusal=metrics.protect_refusal,
            ),
        )

    book = AuctionBook(
        settings.auctions_file,
        env=os.environ,
        default_upstream=settings.rtb_upstream_url,
        default_client=rtb,
        make_client=make_client,
        reload_s=settings.auctions_reload_s,
        on_reload=lambda result: auction_metrics.reloads.labels(result).inc(),
    )
    auctioneer = Auctioneer(
        book.client_for,
        on_settled=_both(auction_metrics.settled, record_legs),
        max_late_legs=settings.auction_late_legs_max,
        on_late_refused=auction_metrics.late_refused.inc,
    )
    metrics.track(auction_metrics.late_legs, lambda: auctioneer.late_legs)
    routes: RouteStore = (
        RedisRouteStore(seam)
        if seam is not None
        else MemoryRouteStore(settings.auction_routes_max_entries)
    )
    return AuctionDesk(book, auctioneer, shield, routes, auction_metrics)


def build_guard(settings: Settings, redis: RedisSeam | None, metrics: Metrics) -> Guard:
    """The allow-list and rate limits; ``redis`` (the process's seam) makes the limits
    hold across replicas."""
    allow_list = None
    if settings.rtb_allowed_keys or settings.rtb_allowed_keys_file:
        keys: list[str] = []
        if settings.rtb_allowed_keys:
            keys += split_keys(settings.rtb_allowed_keys.reveal())
        if settings.rtb_allowed_keys_file:
            keys += read_keys_file(settings.rtb_allowed_keys_file)
        allow_list = KeyAllowList(keys)
    limiter = RateLimiter(
        parse_limits(settings.rate_limit_per_publisher),
        parse_limits(settings.rate_limit_per_key, overrides_allowed=False),
        redis=redis,
        on_fallback=metrics.rate_limit_fallbacks.inc,
    )
    return Guard(allow_list=allow_list, limiter=limiter, on_refusal=metrics.protect_refusal)


def _limits_set(settings: Settings) -> bool:
    return bool(settings.rate_limit_per_publisher.strip() or settings.rate_limit_per_key.strip())


def _lookup_cache(
    settings: Settings, metrics: Metrics, seam: RedisSeam | None
) -> LookupCache | None:
    if settings.lookup_cache_ttl_s <= 0:
        return None
    if seam is not None:
        timeout_s = max(settings.redis_timeout_s, LOOKUP_REDIS_TIMEOUT_FLOOR_S)
        return RedisLookupCache(seam, timeout_s=timeout_s)
    memory = MemoryLookupCache(settings.lookup_cache_max_bytes)
    metrics.track(metrics.lookup_cache_bytes, lambda: memory.used)
    return memory


def _ops_budget(settings: Settings) -> BuildBudget:
    return BuildBudget(settings.ops_refresh_ms / 1000, FRESH_BUILDS)


def _metrics_endpoint(metrics: Metrics, budget: BuildBudget) -> Callable[[Request], Any]:
    body = CachedBody(metrics.render, budget, metrics.ops_answer("/metrics"))

    async def metrics_endpoint(request: Request) -> Response:
        return Response(body.get(), media_type=CONTENT_TYPE)

    return metrics_endpoint


# -- Starlette's error answers, in the gateway's JSON shape ------------------------------------


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


def _both(
    count: Callable[[AuctionResult], None], record: Callable[[AuctionResult], None] | None
) -> Callable[[AuctionResult], None]:
    """A settled auction is counted in the metrics, then its legs go to the ledger."""
    if record is None:
        return count

    def settled(result: AuctionResult) -> None:
        count(result)
        record(result)

    return settled
