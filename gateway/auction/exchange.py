"""Running one auction: waterfall or parallel, within the budget, and choosing the winner.

The budget is a hard stop for the publisher's answer, not for the legs: at the budget the
auction answers with what it has, and legs still out keep running in the background
until their own ``timeout_ms`` so their outcome (a ``late`` bid, a timeout) is recorded.
Those background legs are bounded (``GATEWAY_AUCTION_LATE_LEGS_MAX``); beyond the bound a
leg is cancelled at the budget instead and counted. A late bid is never chosen: the
publisher already has an answer, and that reservation simply expires at Retreaver
(unconfirmed reservations do not count against caps).

- **waterfall**: destinations in priority order, one at a time; the first bid at or
  above its floor wins and no further destination is pinged. A destination whose
  breaker is open is skipped at once (``shed``: its breaker refuses without sending),
  costing no time.
- **parallel**: every destination at once; when all have answered or the budget is
  spent, the highest payout at or above its floor wins; ties go to the lower
  ``priority``, then to the earlier destination in the file.

When everything is settled (answered, timed out or cancelled) ``on_settled`` receives
the :class:`AuctionResult`: the metrics count its legs there, and so will the ledger.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gateway.observe.stats import current_request
from gateway.ping.forwarder import Forwarder
from gateway.ping.requests import Ping
from gateway.wire.answer import UpstreamAnswer

from .file import PARALLEL, Auction, Destination
from .legs import (
    LATE,
    LOST,
    NO_BID,
    PENDING,
    RESERVED,
    UPSTREAM_TIMEOUT,
    LegResult,
    leg_body,
    run_leg,
)

log = logging.getLogger("gateway.auction")

NO_TARGET = UpstreamAnswer(200, b'{"status":"no-target"}', "application/json")


@dataclass(slots=True)
class AuctionResult:
    """An auction's legs (in the order they were tried) and what the publisher got."""

    auction: str
    mode: str
    legs: list[LegResult] = field(default_factory=list)
    winner: LegResult | None = None
    # The request it ran for (its X-Request-ID) and the ping: what the ledger's leg
    # events carry besides the legs themselves.
    request_id: str | None = None
    ping: Ping | None = None

    @property
    def outcome(self) -> str:
        return RESERVED if self.winner is not None else NO_BID

    @property
    def answer(self) -> UpstreamAnswer:
        if self.winner is not None and self.winner.answer is not None:
            return self.winner.answer
        return NO_TARGET


Settled = Callable[[AuctionResult], None]
ClientFor = Callable[[Destination], Forwarder]


class Auctioneer:
    """Runs auctions; ``client_for`` gives each destination its upstream's client."""

    def __init__(
        self,
        client_for: ClientFor,
        *,
        on_settled: Settled | None = None,
        max_late_legs: int = 1024,
        on_late_refused: Callable[[], None] | None = None,
    ) -> None:
        self._client_for = client_for
        self._on_settled = on_settled
        self._max_late_legs = max_late_legs
        self._on_late_refused = on_late_refused
        self._late: set[asyncio.Task[LegResult]] = set()

    @property
    def late_legs(self) -> int:
        """Legs still running after their auction answered."""
        return len(self._late)

    async def run(self, auction: Auction, ping: Ping, deadline: float) -> AuctionResult:
        """The auction's result by ``deadline`` (the budget, already capped by the caller)."""
        request = current_request.get()
        result = AuctionResult(
            auction.name,
            auction.mode,
            request_id=request.request_id if request is not None else None,
            ping=ping,
        )
        started: list[asyncio.Task[LegResult]] = []
        try:
            if auction.mode == PARALLEL:
                await self._parallel(auction, ping, deadline, result, started)
            else:
                await self._waterfall(auction, ping, deadline, result, started)
        finally:
            # Also when this request was cancelled: legs out are followed, never orphaned.
            self._after_budget(result, [task for task in started if not task.done()])
        return result

    async def close(self) -> None:
        """Stop legs still running after their auction (at shutdown)."""
        for task in list(self._late):
            task.cancel()
        if self._late:
            await asyncio.wait(self._late, timeout=1.0)

    # -- the two modes -----------------------------------------------------------------------

    async def _waterfall(
        self,
        auction: Auction,
        ping: Ping,
        deadline: float,
        result: AuctionResult,
        started: list[asyncio.Task[LegResult]],
    ) -> None:
        loop = asyncio.get_running_loop()
        for destination in auction.destinations:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            leg = self._leg(destination)
            result.legs.append(leg)
            task = self._start(destination, ping, leg, loop.time())
            started.append(task)
            done, _ = await asyncio.wait((task,), timeout=remaining)
            if not done:
                return  # budget spent: no further destination is pinged
            if leg.bid:
                result.winner = leg
                return

    async def _parallel(
        self,
        auction: Auction,
        ping: Ping,
        deadline: float,
        result: AuctionResult,
        started: list[asyncio.Task[LegResult]],
    ) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for destination in auction.destinations:
            leg = self._leg(destination)
            result.legs.append(leg)
            started.append(self._start(destination, ping, leg, now))
        remaining = deadline - loop.time()
        if remaining > 0:
            await asyncio.wait(started, timeout=remaining)
        result.winner = best(result.legs)

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _leg(destination: Destination) -> LegResult:
        return LegResult(destination.name, destination.priority, destination.position)

    # Each leg runs in an empty context, outside the request's: parallel legs' upstream
    # times would add up to more than the request's wall time in /stats, and a late leg
    # would charge a request that already ended. The desk charges the auction's own time
    # to the request instead.
    def _start(
        self, destination: Destination, ping: Ping, leg: LegResult, now: float
    ) -> asyncio.Task[LegResult]:
        client = self._client_for(destination)
        leg_deadline = now + destination.timeout_ms / 1000
        body = leg_body(ping, destination)
        return asyncio.get_running_loop().create_task(
            run_leg(client, body, destination, leg, leg_deadline),
            context=contextvars.Context(),
        )

    def _after_budget(self, result: AuctionResult, pending: list[asyncio.Task[LegResult]]) -> None:
        """Mark losers, keep still-running legs (bounded) and settle when all are done."""
        for leg in result.legs:
            if leg.bid and leg is not result.winner:
                leg.outcome = LOST
            if leg is not result.winner:
                leg.answer = None  # only the winner's bytes are kept
        for task in pending:
            if len(self._late) >= self._max_late_legs:
                task.cancel()
                if self._on_late_refused is not None:
                    self._on_late_refused()
                continue
            self._late.add(task)
        if not pending:
            self._settle(result)
            return
        remaining = {id(task) for task in pending}

        def done(task: asyncio.Task[LegResult]) -> None:
            self._late.discard(task)
            remaining.discard(id(task))
            if not remaining:
                _finish_late(result)
                self._settle(result)

        for task in pending:
            task.add_done_callback(done)

    def _settle(self, result: AuctionResult) -> None:
        if self._on_settled is None:
            return
        try:
            self._on_settled(result)
        except Exception:  # a counting bug must never fail a ping
            log.exception("recording an auction's legs failed")


def _finish_late(result: AuctionResult) -> None:
    """Legs that ended after the auction answered: a bid is ``late``; a cancelled leg
    (the late-leg bound, or shutdown) that never answered is a timeout."""
    for leg in result.legs:
        if leg is result.winner:
            continue
        if leg.outcome == RESERVED:
            leg.outcome = LATE
            leg.answer = None
        elif leg.outcome == PENDING:
            leg.outcome = UPSTREAM_TIMEOUT


def best(legs: Iterable[LegResult]) -> LegResult | None:
    """The highest payout among bids; ties: lower priority, then earlier in the file."""
    winner: LegResult | None = None
    for leg in legs:
        if not leg.bid:
            continue
        if winner is None or _rank(leg) < _rank(winner):
            winner = leg
    return winner


def _rank(leg: LegResult) -> tuple[float, int, int]:
    return (-(leg.payout or 0.0), leg.priority, leg.position)
