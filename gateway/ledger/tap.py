"""Pure ASGI middleware: ``X-Outcome`` on every publisher answer, and its ledger event.

It sits outermost, so it sees every answer of a publisher route whoever wrote it: the
upstream's answer passed through, the shield's repeat, a 4xx of the parser, a 403/429 of
the guard, a 503 of load shedding, the 500 of the request middleware. It holds the
``http.response.start`` message until the body arrives (publisher answers are one body
message), reads the code off status and body (outcomes.py), adds the header, and sends
both on unchanged otherwise: the body's bytes are never touched.

What the endpoints know is left in the ASGI scope for it, as ``shield_result`` already
is: ``ledger_request`` (the parsed Ping, Confirmation or DataWrite) and
``upstream_answer`` (set when the answer is the upstream's, so a passed-through 4xx is
told from the gateway's own). Nothing else is asked of them.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.ledger.auction_legs import AUCTION
from gateway.ledger.events import Event
from gateway.ledger.outcomes import (
    CONFIRM,
    CONFIRMED,
    HEADER_VALUES,
    RESERVE,
    RESERVED,
    outcome_of,
    parse_reservation,
    publisher_route,
)
from gateway.ledger.writer import Ledger
from gateway.observe.stats import current_request

REQUEST = "ledger_request"
UPSTREAM_ANSWER = "upstream_answer"
_X_OUTCOME = b"x-outcome"
_RTB_ROUTES = frozenset({RESERVE, CONFIRM})


_CODES = {value: code for code, value in HEADER_VALUES.items()}


def _preset(headers: Any) -> str | None:
    """The outcome an endpoint already wrote in ``X-Outcome`` (an auction does), if any."""
    for name, value in headers:
        if name == _X_OUTCOME:
            return _CODES.get(value)
    return None


def _auction_of(scope: Scope) -> tuple[int, str | None, str | None]:
    """(leg, destination, auction) of a request's own event: leg 0, and for an auction
    its winner (None without one) and name (gateway/ledger/auction_legs.py records the legs)."""
    ran = scope.get(AUCTION)
    if ran is None:
        return 0, None, None
    name, winner = ran
    return 0, winner, name


class OutcomeTap:
    """Adds ``X-Outcome``, counts ``gateway_outcomes_total`` and records the ledger event."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        ledger: Ledger,
        count: Any,
        sub_id_tag: str = "sub_id",
        on_reserved: Any = None,
    ) -> None:
        self.app = app
        self.on_reserved = on_reserved  # (uuid, publisher) -> None: the confirm guard's map
        self.ledger = ledger
        self.count = count  # (route, outcome) -> None
        self.sub_id_tag = sub_id_tag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = publisher_route(scope["method"], scope["path"])
        if route is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        held: Message | None = None
        outcome: str | None = None
        status = 0
        reservation = None
        upstream_s = None

        async def tap(message: Message) -> None:
            nonlocal held, outcome, status, reservation, upstream_s
            kind = message["type"]
            if kind == "http.response.start":
                held = message
                status = message["status"]
                return
            if held is not None:
                start, held = held, None
                headers = start.get("headers", ())
                preset = _preset(headers)
                answer = scope.get(UPSTREAM_ANSWER)
                from_upstream = answer is not None and answer.status == status
                body_status = None
                if from_upstream and 200 <= status < 300 and route in _RTB_ROUTES:
                    reservation = parse_reservation(message.get("body", b""))
                    if reservation is not None:
                        body_status = reservation.status
                if preset is not None:
                    # An auction names its own outcome (it saw every leg); its winner's
                    # body is a reservation like any upstream answer.
                    outcome = preset
                    if outcome in (RESERVED, CONFIRMED):
                        reservation = parse_reservation(message.get("body", b""))
                else:
                    outcome = outcome_of(
                        route,
                        status,
                        from_upstream=from_upstream,
                        body_status=body_status,
                        shield_result=scope.get("shield_result"),
                    )
                    start["headers"] = [*headers, (_X_OUTCOME, HEADER_VALUES[outcome])]
                ctx = current_request.get()
                if ctx is not None:
                    upstream_s = ctx.upstream_seconds
                await send(start)
            await send(message)

        try:
            await self.app(scope, receive, tap)
        finally:
            if outcome is not None:
                self.count(route, outcome)
                self._record(scope, route, status, outcome, reservation, started, upstream_s)

    def _record(
        self,
        scope: Scope,
        route: str,
        status: int,
        outcome: str,
        reservation: Any,
        started: float,
        upstream_s: float | None,
    ) -> None:
        request = scope.get(REQUEST)
        publisher = sub_id = key = caller = uuid = None
        if request is not None:
            key = request.key
            if route == CONFIRM:
                uuid = request.uuid
            else:
                caller = request.caller_number
                publisher = request.publisher_id
                sub_id = request.tags.get(self.sub_id_tag)
        if self.on_reserved is not None and outcome == RESERVED and reservation is not None:
            self.on_reserved(reservation.uuid, publisher)
        self.ledger.record(
            Event(
                time.time(),
                scope.get("request_id") or "",
                route,
                status,
                outcome,
                publisher,
                sub_id,
                key,
                caller,
                reservation,
                uuid,
                time.perf_counter() - started,
                upstream_s,
                *_auction_of(scope),
            )
        )
