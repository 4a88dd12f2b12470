"""``POST /rtbs.json`` and ``PUT|PATCH /rtbs/{uuid}.json``: the publisher's front door.

Each handler is the same three steps: bound and parse the request (4xx, nothing
forwarded), let the shield or the RTB client produce an upstream answer, and return that
answer's status and bytes unchanged. The deadline starts when the request arrives, so the
time a ping spends here counts against ``GATEWAY_RTB_TIMEOUT_MS``.

A ping without a caller number (accepted only with ``GATEWAY_RTB_CALLER_NUMBER=optional``)
has nothing to shield on: it skips the shield, is forwarded every time and answered with
``X-Shield: none``, and is not counted as a shield lookup.

Between parsing and the shield sits the guard (gateway/protect/): an RTB key outside the
allow-list gets 403 and a publisher or key over its rate limit 429, before the shield or
the upstream sees the ping; a confirmation passes the same allow-list and rate limits.

``POST /rtbs.json`` is the hot path, so it is a plain ASGI callable rather than a
Starlette request/response function: it reads the two headers it needs straight from the
scope and sends pre-encoded header pairs, and :class:`RtbFastLane` hands it pings
without the router and exception layers in between (each layer is re-entered every time
the forwarding coroutine resumes, which measured ~60 us per forwarded ping).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auction.desk import AuctionDesk
from gateway.errors import JSON, GatewayError, send_error
from gateway.ledger.tap import REQUEST, UPSTREAM_ANSWER
from gateway.observe.results import HIT
from gateway.ping.forwarder import Forwarder
from gateway.ping.parse import named_in, parse_confirmation, parse_ping
from gateway.protect.guard import Guard
from gateway.shield.base import NONE, X_SHIELD, Shield, marked
from gateway.wire.answer import UpstreamAnswer
from gateway.wire.bodies import read_body, receive_body

_X_SHIELD = {result: value.encode() for result, value in X_SHIELD.items()}
_JSON_TYPE = JSON.encode()


@dataclass(kw_only=True, eq=False)
class RtbEndpoint:
    """What both RTB endpoints are built with (by ``create_app``)."""

    rtb: Forwarder
    shield: Shield
    guard: Guard
    timeout_s: float
    max_body_bytes: int
    # Pings and confirmations whose key is an auction key go here (gateway/auction/).
    auctions: AuctionDesk | None = None


@dataclass(kw_only=True, eq=False)
class CreateReservation(RtbEndpoint):
    """``POST /rtbs.json`` as a plain ASGI app (Starlette routes to it as to any ASGI app)."""

    # False with GATEWAY_RTB_CALLER_NUMBER=optional: pings without a caller are forwarded.
    caller_required: bool = True
    # Content types seen from the upstream, encoded once (a handful at most).
    _types: dict[str, bytes] = field(init=False, default_factory=lambda: {JSON: _JSON_TYPE})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        content_type = declared = None
        body = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                declared = value.decode("latin-1")
        try:
            body = await receive_body(receive, self.max_body_bytes, declared)
            # Parsed already when the wire layer looked for a hit and found none.
            ping = scope.get(REQUEST) or parse_ping(
                scope["query_string"], body, content_type, caller_required=self.caller_required
            )
            scope[REQUEST] = ping
            await self.guard.admit_ping(ping.key, ping.publisher_id)
            desk = self.auctions
            if desk is not None and (auction := desk.table.get(ping.key)) is not None:
                arrived = deadline - self.timeout_s
                scope["shield_result"] = await desk.serve(
                    auction, ping, arrived, deadline, send, scope
                )
                return
            rtb = self.rtb

            def forward():  # type: ignore[no-untyped-def]
                return rtb.reserve(ping.upstream_body(), deadline)

            if ping.caller_number is None:
                # Nothing to shield on (GATEWAY_RTB_CALLER_NUMBER=optional): always forwarded.
                result = NONE
                try:
                    answer = await forward()
                except GatewayError as exc:
                    raise marked(exc, NONE) from None
            else:
                answer, result = await self.shield.answer(ping, deadline, forward)
        except GatewayError as exc:
            if REQUEST not in scope and body:  # refused before parsing: what did it name?
                scope[REQUEST] = named_in(scope["query_string"], body, content_type)
            await send_error(send, exc)
            return
        scope["shield_result"] = result
        scope[UPSTREAM_ANSWER] = answer
        await self._send(send, answer, _X_SHIELD[result])

    def answer_now(self, scope: Scope, body: bytes) -> Message | None:
        """The ``http.response.start`` of a shield hit answered without awaiting, or None.

        The wire layer's question for a complete ``POST /rtbs.json`` (gateway/ping/
        hit_lane.py): the same parsing, allow-list and shield as :meth:`__call__`, and
        None whenever anything would need to wait or refuse (rate limits, an auction key,
        no caller, a miss, any 4xx): that ping then goes the ASGI way, which keeps the
        parsed ping (no second parse) and does the rest as always. The answer's body is
        ``scope[UPSTREAM_ANSWER].body``."""
        guard = self.guard
        if guard.limiter is not None:  # a limit may be kept in Redis: never without waiting
            return None
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
        try:
            ping = parse_ping(
                scope["query_string"], body, content_type, caller_required=self.caller_required
            )
        except GatewayError:
            return None  # the ASGI way parses again and answers the 4xx
        scope[REQUEST] = ping
        if ping.caller_number is None:
            return None
        allow_list = guard.allow_list
        if allow_list is not None and not allow_list.allows(ping.key):
            return None
        desk = self.auctions
        if desk is not None and ping.key in desk.table:
            return None
        answer = self.shield.answer_now(ping)  # type: ignore[attr-defined]
        if answer is None:
            return None
        scope["shield_result"] = HIT
        scope[UPSTREAM_ANSWER] = answer
        return self._start(answer, _X_SHIELD[HIT])

    def _start(self, answer: UpstreamAnswer, x_shield: bytes) -> Message:
        content_type = self._types.get(answer.content_type)
        if content_type is None:
            content_type = answer.content_type.encode("latin-1")
            if len(self._types) < 64:
                self._types[answer.content_type] = content_type
        return {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", b"%d" % len(answer.body)),
                (b"x-shield", x_shield),
            ],
        }

    async def _send(self, send: Send, answer: UpstreamAnswer, x_shield: bytes) -> None:
        await send(self._start(answer, x_shield))
        await send({"type": "http.response.body", "body": answer.body})


class RtbFastLane:
    """Pure ASGI middleware: ``POST /rtbs.json`` goes straight to its endpoint.

    It sits innermost among the gateway's middleware (request id, metrics and
    protections still apply) and skips only Starlette's exception layer and router. It
    records the matched route in the scope as the router would, so the metrics label is
    the same; anything else, including other methods on the same path (405), takes the
    ordinary way.
    """

    def __init__(self, app: ASGIApp, *, route: Route) -> None:
        self.app = app
        self.route = route
        self.endpoint = route.endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.takes(scope):
            self.routed(scope)
            await self.endpoint(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def takes(scope: Scope) -> bool:
        """A ping: ``POST /rtbs.json`` (the hit lane asks the same, gateway/ping/hit_lane.py)."""
        return (
            scope["type"] == "http"
            and scope["path"] == "/rtbs.json"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        )

    def routed(self, scope: Scope) -> None:
        """What the router would leave in the scope (the metrics' route label comes from it)."""
        scope["route"] = self.route
        scope["endpoint"] = self.endpoint
        scope["path_params"] = {}


@dataclass(kw_only=True, eq=False)
class ConfirmReservation(RtbEndpoint):
    """``PUT|PATCH /rtbs/{uuid}.json``: forwarded once; a confirmed answer updates the shield."""

    async def handle(self, request: Request) -> Response:
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        body = await read_body(request, self.max_body_bytes)
        confirmation = parse_confirmation(
            request.path_params["uuid"],
            request.scope["query_string"],
            body,
            request.headers.get("content-type"),
        )
        request.scope[REQUEST] = confirmation
        # The same allow-list and rate limits as a ping (403/429, nothing forwarded).
        await self.guard.admit_confirmation(
            confirmation.key, confirmation.publisher_id, confirmation.uuid
        )
        desk = self.auctions
        if desk is not None and (auction := desk.table.get(confirmation.key)) is not None:
            return await desk.confirm(auction, confirmation, request.method, deadline)
        answer = await self.rtb.confirm(
            confirmation.uuid, request.method, confirmation.upstream_body(), deadline
        )
        request.scope[UPSTREAM_ANSWER] = answer
        if answer.ok:
            await self.shield.confirmed(confirmation.key, confirmation.uuid, answer)
        return Response(
            answer.body, status_code=answer.status, headers={"content-type": answer.content_type}
        )
