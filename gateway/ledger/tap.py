"""``X-Outcome`` on every publisher answer, its count, and its ledger event.

Not a middleware layer of its own: :class:`gateway.observe.middleware.RequestMiddleware`
calls it from the ``send`` wrapper and the ``finally`` it already has for every request
(a layer of its own cost a coroutine per ASGI message and a second ``try``, measured as a
third of what the ledger added to a shield hit). The request middleware is outermost, so
this sees every answer of a publisher route whoever wrote it: the upstream's answer
passed through, the shield's repeat, a 4xx of the parser, a 403/429 of the guard, a 503
of load shedding, its own 500. The middleware holds the ``http.response.start`` message
until the body arrives (publisher answers are one body message), :meth:`answered` reads
the code off status and body (outcomes.py) and adds the header, and both go on
unchanged otherwise: the body's bytes are never touched.

What the endpoints know is left in the ASGI scope for it, as ``shield_result`` already
is: ``ledger_request`` (the parsed Ping, Confirmation or DataWrite) and
``upstream_answer`` (set when the answer is the upstream's, so a passed-through 4xx is
told from the gateway's own). Nothing else is asked of them.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import Message, Scope

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


class Tapped:
    """What :meth:`OutcomeTap.answered` decided about one answer, for its record."""

    __slots__ = ("outcome", "reservation", "status", "upstream_s")

    def __init__(
        self, outcome: str, status: int, reservation: Any, upstream_s: float | None
    ) -> None:
        self.outcome = outcome
        self.status = status
        self.reservation = reservation
        self.upstream_s = upstream_s


class OutcomeTap:
    """Adds ``X-Outcome``, counts ``gateway_outcomes_total`` and records the ledger event."""

    # (method, path) -> the publisher route, or None for a request it leaves alone.
    route = staticmethod(publisher_route)

    def __init__(
        self,
        *,
        ledger: Ledger,
        count: Any,
        sub_id_tag: str = "sub_id",
        on_reserved: Any = None,
    ) -> None:
        self.on_reserved = on_reserved  # (uuid, publisher) -> None: the confirm guard's map
        self.ledger = ledger
        self.count = count  # (route, outcome) -> None
        self.sub_id_tag = sub_id_tag

    def answered(
        self, scope: Scope, route: str, start: Message, body: bytes, upstream_s: float | None
    ) -> Tapped:
        """The outcome of the answer ``start`` + ``body``; adds ``X-Outcome`` to ``start``."""
        status = start["status"]
        headers = start.get("headers", ())
        preset = _preset(headers)
        reservation = None
        if preset is not None:
            # An auction names its own outcome (it saw every leg); its winner's body is a
            # reservation like any upstream answer.
            if preset in (RESERVED, CONFIRMED):
                reservation = parse_reservation(body)
            return Tapped(preset, status, reservation, upstream_s)
        answer = scope.get(UPSTREAM_ANSWER)
        from_upstream = answer is not None and answer.status == status
        body_status = None
        if from_upstream and 200 <= status < 300 and route in _RTB_ROUTES:
            reservation = parse_reservation(body)
            if reservation is not None:
                body_status = reservation.status
        outcome = outcome_of(
            route,
            status,
            from_upstream=from_upstream,
            body_status=body_status,
            shield_result=scope.get("shield_result"),
        )
        start["headers"] = [*headers, (_X_OUTCOME, HEADER_VALUES[outcome])]
        return Tapped(outcome, status, reservation, upstream_s)

    def record(self, scope: Scope, route: str, tapped: Tapped, duration_s: float) -> None:
        """Count the outcome and queue the ledger event (no I/O: ledger/writer.py)."""
        outcome, reservation = tapped.outcome, tapped.reservation
        self.count(route, outcome)
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
                tapped.status,
                outcome,
                publisher,
                sub_id,
                key,
                caller,
                reservation,
                uuid,
                duration_s,
                tapped.upstream_s,
                *_auction_of(scope),
            )
        )
