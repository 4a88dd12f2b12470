"""The outcome codes: one vocabulary for ``X-Outcome``, the ledger, the metric and the docs.

Every answer of a publisher route gets exactly one code. :func:`outcome_of` is the whole
mapping, a pure function of what the answer was: the route, the HTTP status, whether the
answer was the upstream's own (passed through) or the gateway's, the ``status`` field of
the upstream's body, and the shield's result. The auction leg codes (``lost``, ``late``,
``below_floor``) appear only on auction legs' events, never on an answer.

The reservation fields the ledger keeps are read from the same parse of the body that
decides ``reserved`` / ``no_bid`` / ``confirmed``, so an answer is decoded at most once.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.observe.results import COALESCED, HIT

RESERVED = "reserved"
CONFIRMED = "confirmed"
NO_BID = "no_bid"
REPEAT = "repeat"
WRITTEN = "written"
INVALID = "invalid"
FORBIDDEN = "forbidden"
RATE_LIMITED = "rate_limited"
SHED = "shed"
UPSTREAM_TIMEOUT = "upstream_timeout"
UPSTREAM_ERROR = "upstream_error"
UPSTREAM_REFUSED = "upstream_refused"
# Auction legs only (never an answer's X-Outcome).
LOST = "lost"
LATE = "late"
BELOW_FLOOR = "below_floor"

# (code, when): the reference table, in the order the docs list it.
ANSWER_OUTCOMES: tuple[tuple[str, str], ...] = (
    (RESERVED, "the upstream answered 2xx with a reservation (status reserved): a bid"),
    (CONFIRMED, "a confirmation answered with status confirmed"),
    (NO_BID, "the upstream answered 2xx without a reservation (no-target or any other status)"),
    (REPEAT, "answered from the ping shield (X-Shield: hit or coalesced)"),
    (WRITTEN, "call data writing forwarded and answered 2xx"),
    (INVALID, "refused by the gateway as malformed or invalid (400, 413, 415, 422, other 4xx)"),
    (FORBIDDEN, "refused by the allow-list (403)"),
    (RATE_LIMITED, "refused by a rate limit (429)"),
    (SHED, "refused while shedding load, draining or with a breaker open (503)"),
    (UPSTREAM_TIMEOUT, "no answer within the deadline (504)"),
    (UPSTREAM_ERROR, "the upstream was unreachable or broke the answer (502, other 5xx)"),
    (UPSTREAM_REFUSED, "the upstream answered non-2xx (passed through)"),
)
LEG_OUTCOMES: tuple[tuple[str, str], ...] = (
    (LOST, "an auction leg's bid that another beat"),
    (LATE, "an auction leg's bid after the budget"),
    (BELOW_FLOOR, "an auction leg's bid under the destination's floor"),
)
OUTCOMES = tuple(code for code, _ in ANSWER_OUTCOMES + LEG_OUTCOMES)
# The header values, encoded once.
HEADER_VALUES = {code: code.encode("ascii") for code in OUTCOMES}

# The publisher routes that carry X-Outcome (route templates, as metrics label them).
RESERVE = "/rtbs.json"
CONFIRM = "/rtbs/{uuid}.json"
DATA_WRITING = "/data_writing"
DATA_WRITING_KEY = "/data_writing/{key}"
ROUTES = (RESERVE, CONFIRM, DATA_WRITING, DATA_WRITING_KEY)

_GATEWAY_STATUS = {
    403: FORBIDDEN,
    429: RATE_LIMITED,
    502: UPSTREAM_ERROR,
    503: SHED,
    504: UPSTREAM_TIMEOUT,
}


def publisher_route(method: str, path: str) -> str | None:
    """The route template of a publisher request, or ``None`` for any other request.

    Decided from the method and path alone (not the router's match), so answers given
    before the router runs (load shedding) are classified too.
    """
    if path == "/rtbs.json":
        return RESERVE if method == "POST" else None
    if path.startswith("/rtbs/"):
        if method in ("PUT", "PATCH") and path.endswith(".json") and "/" not in path[6:]:
            return CONFIRM
        return None
    if path == "/data_writing":
        return DATA_WRITING if method in ("POST", "GET") else None
    if path.startswith("/data_writing/"):
        return DATA_WRITING_KEY if method == "GET" and "/" not in path[14:] else None
    return None


class Reservation(msgspec.Struct, gc=False):
    """The fields of an upstream 2xx body the ledger keeps (all optional, as sent)."""

    status: str | None = None
    uuid: str | None = None
    retreaver_payout: float | None = None
    retreaver_seconds: float | None = None
    inbound_number: str | None = None
    expires_at: str | None = None


class _StatusOnly(msgspec.Struct, gc=False):
    status: Any = None


_reservation = msgspec.json.Decoder(Reservation)
_status_only = msgspec.json.Decoder(_StatusOnly)


def parse_reservation(body: bytes) -> Reservation | None:
    """The body as a :class:`Reservation`; a body that is not one yields what can be read.

    Never raises: an upstream that sends odd types (a payout as a string) still gets its
    ``status`` read, and a body that is not a JSON object yields ``None``.
    """
    try:
        return _reservation.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        pass
    try:
        status = _status_only.decode(body).status
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    return Reservation(status=status if isinstance(status, str) else None)


def outcome_of(
    route: str,
    status: int,
    *,
    from_upstream: bool,
    body_status: str | None = None,
    shield_result: str | None = None,
) -> str:
    """The code of one answer (see the module docstring for the inputs)."""
    if 200 <= status < 300:
        if shield_result in (HIT, COALESCED):
            return REPEAT
        if route in (DATA_WRITING, DATA_WRITING_KEY):
            return WRITTEN
        if body_status == RESERVED and route == RESERVE:
            return RESERVED
        if body_status == CONFIRMED and route == CONFIRM:
            return CONFIRMED
        return NO_BID
    if from_upstream:
        return UPSTREAM_REFUSED
    code = _GATEWAY_STATUS.get(status)
    if code is not None:
        return code
    return INVALID if status < 500 else UPSTREAM_ERROR
