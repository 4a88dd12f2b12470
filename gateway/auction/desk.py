"""What the RTB endpoints call for an auction key: run it through the shield, answer it,
and route its confirmation.

A ping (validated once by the endpoint) runs its auction under the ping shield, keyed on
(auction key, caller) like any ping: a repeat gets the winning answer (``X-Outcome:
repeat``) and concurrent duplicates share one auction. The publisher gets the winner's
answer byte-for-byte with ``X-Auction-Winner: <destination name>`` and ``X-Outcome:
reserved``, or ``200 {"status":"no-target"}`` with ``X-Outcome: no_bid``: an auction
whose destinations are all down, hanging or refusing is a no-bid, never a 5xx.

The answer is due ``budget_ms`` after the ping arrived (or at the ping's own deadline,
``GATEWAY_RTB_TIMEOUT_MS``, if sooner). Before answering, the winner's route (uuid ->
auction, destination) is remembered until its ``expires_at``; a confirmation with the
auction key is forwarded only for that uuid, to that destination, with that
destination's key.
"""

from __future__ import annotations

import logging
import time

from starlette.responses import Response
from starlette.types import Scope, Send

from gateway.errors import NotFound, UpstreamError, UpstreamUnavailable
from gateway.ledger.auction_legs import AUCTION
from gateway.observe.results import COALESCED, HIT, NONE
from gateway.observe.stats import current_request
from gateway.ping.requests import Confirmation, Ping
from gateway.shield.base import X_SHIELD, Shield
from gateway.shield.entry import decode_object, parse_expires_at
from gateway.wire.answer import UpstreamAnswer
from gateway.wire.redis import RedisUnavailable

from .book import AuctionBook
from .counters import AuctionMetrics
from .exchange import NO_TARGET, Auctioneer, AuctionResult
from .file import Auction
from .legs import LegResult
from .reservations import Route, RouteStore, route_digest

log = logging.getLogger("gateway.auction")

# The shield's waiters get a little more than the budget: the leader answers at the
# budget, and a waiter should get its answer rather than give up a moment earlier.
WAITER_SLACK_S = 0.010

_X_SHIELD = {result: value.encode() for result, value in X_SHIELD.items()}
_REPEAT = b"repeat"
_RESERVED = b"reserved"
_NO_BID = b"no_bid"


class AuctionDesk:
    def __init__(
        self,
        book: AuctionBook,
        auctioneer: Auctioneer,
        shield: Shield,
        routes: RouteStore,
        metrics: AuctionMetrics | None = None,
    ) -> None:
        self.book = book
        self._auctioneer = auctioneer
        self._shield = shield
        self._routes = routes
        self._metrics = metrics

    @property
    def table(self) -> dict[str, Auction]:
        """Auction key -> auction, as currently in force (swapped whole on reload)."""
        return self.book.table

    async def serve(
        self,
        auction: Auction,
        ping: Ping,
        arrived: float,
        deadline: float,
        send: Send,
        scope: Scope | None = None,
    ) -> str:
        """Answer ``ping`` by running ``auction``; returns the shield result. ``scope``
        gets the auction's name and winner for the request's own ledger event."""
        due = min(deadline, arrived + auction.budget_ms / 1000)
        ran: list[AuctionResult] = []

        async def forward() -> UpstreamAnswer:
            started = time.perf_counter()
            result = await self._auctioneer.run(auction, ping, due)
            request = current_request.get()
            if request is not None:  # /stats: the auction is this request's upstream time
                answered = any(leg.status is not None for leg in result.legs)
                request.add_upstream(time.perf_counter() - started, not answered)
            ran.append(result)
            if result.winner is not None:
                await self._remember(auction, result.winner)
            if self._metrics is not None:
                self._metrics.answered(result)
            return result.answer

        if ping.caller_number is None:
            answer, shield_result = await forward(), NONE
        else:
            try:
                answer, shield_result = await self._shield.answer(
                    ping, due + WAITER_SLACK_S, forward
                )
            except UpstreamError:
                # Only a waiter whose leader did not answer in time gets here (the
                # auction itself never raises): no bid within the budget.
                answer, shield_result = NO_TARGET, COALESCED
        winner = ran[0].winner if ran else None
        if scope is not None:
            scope[AUCTION] = (auction.name, winner.destination if winner is not None else None)
        headers = [(b"x-shield", _X_SHIELD[shield_result])]
        if shield_result in (HIT, COALESCED) and not ran:
            headers.append((b"x-outcome", _REPEAT))
        elif winner is not None:
            headers.append((b"x-outcome", _RESERVED))
            headers.append((b"x-auction-winner", winner.destination.encode()))
        else:
            headers.append((b"x-outcome", _NO_BID))
        await _send(send, answer, headers)
        return shield_result

    async def confirm(
        self, auction: Auction, confirmation: Confirmation, method: str, deadline: float
    ) -> Response:
        """Forward a confirmation of ``auction``'s winner to its destination, or 404."""
        uuid = confirmation.uuid
        auction_key = auction.key.reveal()
        try:
            route = await self._routes.find(route_digest(auction_key, uuid))
        except RedisUnavailable as exc:
            log.warning("auction route lookup failed (%s)", exc.reason)
            raise UpstreamUnavailable(
                "the auction's reservations cannot be looked up right now; retry shortly",
                headers={"Retry-After": "1"},
            ) from None
        destination = auction.destination(route.destination) if route is not None else None
        if route is None or route.auction != auction.name or destination is None:
            if self._metrics is not None:
                self._metrics.confirms_refused.inc()
            raise NotFound("no reservation with this uuid won this auction; nothing was forwarded")
        client = self.book.client_for(destination)
        body = Confirmation(uuid, destination.key.reveal(), confirmation.status).upstream_body()
        answer = await client.confirm(uuid, method, body, deadline)
        if answer.ok:
            await self._shield.confirmed(auction_key, uuid, answer)
        return Response(
            answer.body,
            status_code=answer.status,
            headers={
                "content-type": answer.content_type,
                "x-outcome": _confirm_outcome(answer),
                "x-auction-winner": destination.name,
            },
        )

    async def close(self) -> None:
        await self._auctioneer.close()

    async def _remember(self, auction: Auction, winner: LegResult) -> None:
        assert winner.uuid is not None
        expires_s = parse_expires_at(winner.expires_at)
        if expires_s is None:
            return
        digest = route_digest(auction.key.reveal(), winner.uuid)
        try:
            kept = await self._routes.remember(
                digest, Route(auction.name, winner.destination), int(expires_s * 1000)
            )
        except RedisUnavailable as exc:
            kept = False
            log.warning(
                "auction winner not remembered; its confirmation will be refused (%s)",
                exc.reason,
                extra={"auction": auction.name, "destination": winner.destination},
            )
        if not kept and self._metrics is not None:
            self._metrics.routes_refused.inc()


def _confirm_outcome(answer: UpstreamAnswer) -> str:
    if not answer.ok:
        return "upstream_refused"
    data = decode_object(answer.body)
    return "confirmed" if data is not None and data.get("status") == "confirmed" else "no_bid"


async def _send(send: Send, answer: UpstreamAnswer, extra: list[tuple[bytes, bytes]]) -> None:
    body = answer.body
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [
                (b"content-type", answer.content_type.encode("latin-1")),
                (b"content-length", b"%d" % len(body)),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
