"""One leg of an auction: the validated ping sent to one destination, and what came back.

A leg never raises: every way it can end is an outcome code, the same words the rest of
the gateway's outcomes use (``reserved``, ``no_bid``, ``upstream_timeout``,
``upstream_error``, ``upstream_refused``, ``shed`` for a destination whose breaker is
open), plus the three only an auction has: ``below_floor`` (a bid under the
destination's floor), ``lost`` (a bid another beat) and ``late`` (a bid after the
budget). A :class:`LegResult` carries what a ledger event for the leg needs, so wiring
legs into the ledger is one call per leg.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec

from gateway.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable
from gateway.ping.forwarder import Forwarder
from gateway.ping.requests import Ping
from gateway.wire.answer import UpstreamAnswer

from .file import Destination

RESERVED = "reserved"
NO_BID = "no_bid"
LOST = "lost"
LATE = "late"
BELOW_FLOOR = "below_floor"
UPSTREAM_TIMEOUT = "upstream_timeout"
UPSTREAM_ERROR = "upstream_error"
UPSTREAM_REFUSED = "upstream_refused"
SHED = "shed"
# A leg still running when the auction answered; replaced by its final outcome.
PENDING = "pending"

LEG_OUTCOMES = (
    RESERVED,
    NO_BID,
    LOST,
    LATE,
    BELOW_FLOOR,
    UPSTREAM_TIMEOUT,
    UPSTREAM_ERROR,
    UPSTREAM_REFUSED,
    SHED,
)

_decoder = msgspec.json.Decoder()


@dataclass(slots=True)
class LegResult:
    """What one destination answered (mutable: ``lost``/``late`` are decided after)."""

    destination: str
    priority: int
    position: int
    outcome: str = PENDING
    status: int | None = None  # the upstream's HTTP status; None without an answer
    payout: float | None = None
    uuid: str | None = None
    expires_at: str | None = None
    upstream_ms: float | None = None
    answer: UpstreamAnswer | None = None  # kept only for a bid: the winner's bytes

    @property
    def bid(self) -> bool:
        """A reservation at or above the floor: a candidate to win."""
        return self.outcome == RESERVED

    def as_dict(self) -> dict[str, Any]:
        """The leg as a ledger would record it (no key, no caller)."""
        return {
            "destination": self.destination,
            "outcome": self.outcome,
            "status": self.status,
            "payout": self.payout,
            "reservation_uuid": self.uuid,
            "expires_at": self.expires_at,
            "upstream_ms": self.upstream_ms,
        }


def leg_body(ping: Ping, destination: Destination) -> bytes:
    """The ping as the destination receives it: the same fields, its own key."""
    return msgspec.structs.replace(ping, key=destination.key.reveal()).upstream_body()


async def run_leg(
    client: Forwarder, body: bytes, destination: Destination, leg: LegResult, deadline: float
) -> LegResult:
    """Send one leg and fill ``leg`` in; never raises (cancellation aside)."""
    started = time.perf_counter()
    try:
        answer = await client.reserve(body, deadline)
    except UpstreamTimeout:
        leg.outcome = UPSTREAM_TIMEOUT
    except UpstreamUnavailable:
        leg.outcome = SHED  # breaker open: skipped, nothing sent
    except GatewayError as exc:
        leg.outcome = SHED if exc.status == 503 else UPSTREAM_ERROR
    else:
        leg.status = answer.status
        classify(leg, answer, destination.floor)
    leg.upstream_ms = round((time.perf_counter() - started) * 1000, 3)
    return leg


def classify(leg: LegResult, answer: UpstreamAnswer, floor: float) -> None:
    """``reserved`` (a bid at or above ``floor``), ``below_floor``, ``no_bid`` or
    ``upstream_refused`` (a non-2xx answer)."""
    if not answer.ok:
        leg.outcome = UPSTREAM_REFUSED
        return
    try:
        data = _decoder.decode(answer.body)
    except (msgspec.DecodeError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("status") != "reserved":
        leg.outcome = NO_BID
        return
    uuid, expires_at = data.get("uuid"), data.get("expires_at")
    leg.uuid = uuid.lower() if isinstance(uuid, str) else None
    leg.expires_at = expires_at if isinstance(expires_at, str) else None
    payout = _number(data.get("retreaver_payout"))
    leg.payout = payout
    if leg.uuid is None or leg.expires_at is None:
        leg.outcome = NO_BID  # a reservation without a uuid cannot be confirmed
    elif (payout if payout is not None else 0.0) < floor:
        leg.outcome = BELOW_FLOOR
    else:
        leg.outcome = RESERVED
        leg.answer = answer


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value == value else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number == number and number not in (float("inf"), float("-inf")) else None
    return None
