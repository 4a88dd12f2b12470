"""An auction's legs as ledger events: one per destination pinged, beside the request's own.

The request itself is leg 0, recorded by the tap with the auction's name and winner; each
destination the auction pinged is leg 1..n (in the order tried), with the leg's outcome
(``reserved`` for the winner, ``lost``, ``late``, ``below_floor``, ``no_bid`` or an
``upstream_*`` code), the destination's name and the reservation it offered. The key
recorded is the auction key the publisher sent (digested by the writer like any key),
never a destination's key. Legs are recorded when the auction has settled, which for a
parallel auction with a late bid is after the publisher was answered; like every
``record()``, this appends to the bounded queue and does no I/O.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.ledger.events import Event
from gateway.ledger.outcomes import RESERVE, Reservation
from gateway.ledger.writer import Ledger

# What the tap reads off the scope for leg 0: (auction name, winning destination or None).
AUCTION = "ledger_auction"


class LegRecorder:
    """``Auctioneer``'s ``on_settled``: record every leg of a settled auction."""

    def __init__(self, ledger: Ledger, sub_id_tag: str = "sub_id") -> None:
        self.ledger = ledger
        self.sub_id_tag = sub_id_tag

    def __call__(self, result: Any) -> None:
        ping = result.ping
        if ping is None or result.request_id is None:
            return
        now = time.time()
        sub_id = ping.tags.get(self.sub_id_tag)
        for number, leg in enumerate(result.legs, start=1):
            reservation = None
            if leg.uuid is not None:
                reservation = Reservation(
                    status="reserved",
                    uuid=leg.uuid,
                    retreaver_payout=leg.payout,
                    expires_at=leg.expires_at,
                )
            self.ledger.record(
                Event(
                    now,
                    result.request_id,
                    RESERVE,
                    leg.status or 0,
                    leg.outcome,
                    ping.publisher_id,
                    sub_id,
                    ping.key,
                    ping.caller_number,
                    reservation,
                    None,
                    None,
                    None if leg.upstream_ms is None else leg.upstream_ms / 1000,
                    number,
                    leg.destination,
                    result.auction,
                )
            )
