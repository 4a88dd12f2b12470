"""Load shedding and request-line limits, as pure ASGI middleware in front of every route.

Why a cap and not a queue: a replica that is already behind only gets further behind by
queueing, and the publisher's own deadline keeps running while a request waits. Past
``max_in_flight`` requests being served by this replica, a new one gets a fast
``503 overloaded`` JSON with ``Retry-After: 1`` before its body is read, so memory per
replica is bounded by roughly ``max_in_flight x GATEWAY_MAX_BODY_BYTES``. The count covers
work, not waiting on the client: while an answer is being handed to a client that is not
reading (its send buffer full), that request holds no slot; the connection's send timeout
(:mod:`gateway.wire.protocol`) drops such a client. The operations routes (``/healthz``,
``/readyz``, ``/metrics``) are not counted against that cap: an overloaded replica must
still be observable and must not be killed by its liveness probe. ``/stats`` and
``/metrics`` are paced instead (:mod:`gateway.protect.ops_pacing`), so a flood of them
waits, and past a few dozen waiting is shed with a 503, before any ping is.

A query string over ``max_query_bytes`` gets ``414 uri_too_long`` here, whatever the
server in front; the server's own head limits live in :mod:`gateway.wire.protocol`.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import Overloaded, Rendered, UriTooLong, prerender, send_error
from gateway.protect.ops_pacing import OpsPacer

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/stats", "/status", "/openapi.json"})
# Built from the whole replica's state, so paced (the others answer fixed bytes).
PACED_PATHS = frozenset({"/metrics", "/stats"})


class ProtectMiddleware:
    """Refuses what must never reach a handler: too many at once, or too long a query."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        max_query_bytes: int,
        on_refusal: Callable[[str], None] | None = None,
        ops_pacer: OpsPacer | None = None,
    ) -> None:
        self.app = app
        self.ops_pacer = ops_pacer
        self.max_in_flight = max_in_flight
        self.max_query_bytes = max_query_bytes
        self.in_flight = 0
        self._on_refusal = on_refusal
        self._overloaded = prerender(
            Overloaded,
            "this replica is at its limit of requests in flight; retry shortly",
            headers={"Retry-After": "1"},
        )
        self._ops_busy = prerender(
            Overloaded,
            "too many requests for /stats and /metrics at once; retry shortly",
            headers={"Retry-After": "1"},
        )
        self._too_long = prerender(
            UriTooLong,
            f"the query string is longer than {max_query_bytes} bytes; send the fields in the body",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            pacer = self.ops_pacer
            if pacer is not None and scope.get("path") in PACED_PATHS and not await pacer.admit():
                await self._refuse(send, self._ops_busy, "ops_shed")
                return
            await self.app(scope, receive, send)
            return
        if len(scope["query_string"]) > self.max_query_bytes:
            await self._refuse(send, self._too_long, "uri_too_long")
            return
        if self.in_flight >= self.max_in_flight:
            await self._refuse(send, self._overloaded, "overloaded")
            return
        self.in_flight += 1

        async def send_uncounted(message: Message) -> None:
            # Waiting on the peer is not work: a client that does not read its answer
            # would otherwise hold the slot until the connection's send timeout.
            self.in_flight -= 1
            try:
                await send(message)
            finally:
                self.in_flight += 1

        try:
            await self.app(scope, receive, send_uncounted)
        finally:
            self.in_flight -= 1

    def admits_now(self, scope: Scope) -> bool:
        """Whether a publisher request would pass the checks above without a refusal.

        For the wire layer's shield hits (gateway/ping/hit_lane.py), which are answered
        within one call and so hold a slot for no time: anything this would refuse goes
        the ASGI way and is refused, counted and logged there."""
        return (
            len(scope["query_string"]) <= self.max_query_bytes
            and self.in_flight < self.max_in_flight
        )

    async def _refuse(self, send: Send, answer: Rendered, why: str) -> None:
        if self._on_refusal is not None:
            self._on_refusal(why)
        await send_error(send, answer)
