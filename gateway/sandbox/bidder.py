"""The sandbox's RTB endpoint: reservations shaped like the reference's examples.

Pings are steered with tags, because tags are what the gateway forwards untouched:

``sandbox_delay_ms=N``      answer after N ms (at most 60,000)
``sandbox_status=NNN``      answer with that status and ``{"error": "sandbox error NNN"}``
``sandbox_outcome=...``     ``no-target`` (no buyer: no uuid, no ``expires_at``),
                            ``hang`` (never answer within 60 s), ``garbage`` (a non-JSON
                            200), ``expired`` (``expires_at`` in the past),
                            ``confirm-no-target`` (reserve now, answer no-target on confirm)
``sandbox_ttl_s=N``         reservation lifetime (default 60 s)

Campaigns: a few keys behave like different buyers, so an auction over them (the
example ``docs/pages/examples/auctions.toml``) makes a real choice. Any other key bids 5.00 at
once, as before.

=========================  ==========  =========  ==========================
key                        payout      latency    note
=========================  ==========  =========  ==========================
``sandbox-solar-premium``  42.00       ~120 ms    the best bid, but slow
``sandbox-solar-standard`` 28.00       ~40 ms
``sandbox-insurance-fast`` 18.50       ~10 ms     the quick, cheap one
``sandbox-flaky-buyer``    55.00       ~60 ms     no target half the time
=========================  ==========  =========  ==========================

Reservations issued for the same ping (every field alike but the key, as an auction's
legs are) form one group while any of them is live; ``GET /_sandbox/auctions`` counts
confirmations, and ``loser_confirmations``: confirmations beyond the first in a group,
i.e. a reservation confirmed although another one of the same ping already was. An
auction must keep that at 0.

The same knobs can be set for every request with ``POST /_sandbox/config`` (JSON object,
e.g. ``{"delay_ms": 200}``; the Core API's ``core_api_*`` knobs live there too, see
sandbox/core_api/knobs.py); ``GET /_sandbox/requests`` lists what the sandbox received
(newest last, at most 10,000) and ``DELETE /_sandbox/requests`` forgets them, so tests
assert on exactly what reached the "upstream".
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid as uuidlib
from collections import OrderedDict, deque
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.sandbox.api.knobs import check_config as check_core_api_config
from gateway.sandbox.callers import DEFAULT_CALL_RATE, Callers

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()
JSON = "application/json"

POOL_NUMBERS = ("+18772435010", "+18778955221", "+18665550142", "+18445550199")
SIP_DOMAIN = "sip.retreaver.com"
MAX_DELAY_MS = 60_000
MAX_GROUPS = 100_000


class Campaign(msgspec.Struct, frozen=True):
    payout: float
    delay_ms: float
    no_target_rate: float = 0.0


CAMPAIGNS = {
    "sandbox-solar-premium": Campaign(42.0, 120),
    "sandbox-solar-standard": Campaign(28.0, 40),
    "sandbox-insurance-fast": Campaign(18.5, 10),
    "sandbox-flaky-buyer": Campaign(55.0, 60, no_target_rate=0.5),
}
DEFAULT_PAYOUT = 5.0


class SandboxState:
    def __init__(self, call_rate: float = DEFAULT_CALL_RATE) -> None:
        self.config: dict[str, Any] = {}
        #: who calls after a reservation (sandbox/callers.py)
        self.callers = Callers(call_rate)
        self.received: deque[dict[str, Any]] = deque(maxlen=10_000)
        #: Core API requests (method, path, raw_path, query, status); see sandbox.core_api
        self.core_received: deque[dict[str, Any]] = deque(maxlen=10_000)
        # Set whenever a request is recorded, so tests wait on an event, not a sleep.
        self.arrived = asyncio.Event()
        self.reservations: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.counter = 0
        #: call data written for callers without a call yet (sandbox/data_writing.py)
        self.stored_tags: dict[str, dict[str, str]] = {}
        #: reservations of one ping (same fields but the key): fingerprint -> (group, until)
        self.groups: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self.group_confirmations: OrderedDict[int, int] = OrderedDict()
        self.groups_made = 0
        self.confirmations = 0
        self.loser_confirmations = 0
        self.random = random.Random()

    def group_of(self, fields: dict[str, Any], expires_s: float) -> int:
        """The group of a new reservation: the live one of the same ping, or a new one."""
        fingerprint = repr(sorted((k, str(v)) for k, v in fields.items() if k != "key"))
        now = time.time()
        found = self.groups.get(fingerprint)
        if found is None or found[1] < now:
            self.groups_made += 1
            group = self.groups_made
        else:
            group = found[0]
        self.groups[fingerprint] = (group, max(expires_s, found[1] if found else 0.0))
        if len(self.groups) > MAX_GROUPS:
            self.groups.popitem(last=False)
        return group

    def confirmed(self, group: int) -> None:
        self.confirmations += 1
        count = self.group_confirmations.get(group, 0) + 1
        self.group_confirmations[group] = count
        if count > 1:
            self.loser_confirmations += 1
        if len(self.group_confirmations) > MAX_GROUPS:
            self.group_confirmations.popitem(last=False)

    def record(self, entry: dict[str, Any]) -> None:
        self.received.append(entry)
        self.arrived.set()


def _json(data: Any, status: int = 200) -> Response:
    return Response(_enc.encode(data), status_code=status, media_type=JSON)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


async def _fields(request: Request) -> dict[str, Any]:
    fields: dict[str, Any] = dict(parse_qsl(request.url.query, keep_blank_values=True))
    body = await request.body()
    if body.strip():
        if body.lstrip()[:1] == b"{":
            try:
                data = _dec.decode(body)
            except msgspec.DecodeError:
                data = {}
            if isinstance(data, dict):
                fields.update(data)
        else:
            fields.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return fields


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


async def _steer(fields: dict[str, Any], config: dict[str, Any]) -> Response | None:
    delay = fields.get("sandbox_delay_ms", config.get("delay_ms"))
    if delay is not None:
        await asyncio.sleep(min(float(delay), MAX_DELAY_MS) / 1000)
    outcome = fields.get("sandbox_outcome", config.get("outcome"))
    if outcome == "hang":
        await asyncio.sleep(MAX_DELAY_MS / 1000)
    if outcome == "garbage":
        return Response(b"<html>upstream proxy error</html>", media_type="text/html")
    status = fields.get("sandbox_status", config.get("status"))
    if status is not None:
        code = int(status)
        return _json({"error": f"sandbox error {code}"}, code)
    return None


async def _received(request: Request, path: str, fields: dict[str, Any]) -> Response | None:
    """Record a publisher request for ``/_sandbox/requests``, then apply the steering
    fields and knobs: the steered answer, or None to answer normally."""
    state = _state(request)
    state.record(
        {
            "method": request.method,
            "path": path,
            "fields": fields,
            "content_type": request.headers.get("content-type"),
            "at": time.time(),
        }
    )
    return await _steer(fields, state.config)


async def create_rtb(request: Request) -> Response:
    state = _state(request)
    fields = await _fields(request)
    steered = await _received(request, "/rtbs.json", fields)
    if steered is not None:
        return steered
    # No caller_number is fine: Retreaver lets some postback keys bid without one.
    if not fields.get("key") or not (fields.get("publisher_id") or fields.get("source_id")):
        return _json({"error": "key and publisher_id are required"}, 422)
    outcome = fields.get("sandbox_outcome", state.config.get("outcome"))
    campaign = CAMPAIGNS.get(str(fields["key"]))
    if campaign is not None:
        # A little jitter, so latencies look like a buyer's and not a metronome's.
        await asyncio.sleep(campaign.delay_ms * state.random.uniform(0.8, 1.2) / 1000)
        if state.random.random() < campaign.no_target_rate:
            outcome = "no-target"
    if outcome == "no-target":
        return _json({"status": "no-target"})
    state.counter += 1
    rid = str(uuidlib.uuid4())
    ttl = float(fields.get("sandbox_ttl_s", state.config.get("ttl_s", 60)))
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ttl)
    if outcome == "expired":
        expires = now - timedelta(seconds=1)
    inbound = fields.get("inbound_number") or POOL_NUMBERS[state.counter % len(POOL_NUMBERS)]
    reservation = {
        "uuid": rid,
        "status": "reserved",
        "retreaver_payout": campaign.payout if campaign is not None else DEFAULT_PAYOUT,
        "retreaver_seconds": 10,
        "inbound_number": inbound,
        "sip_address": f"{inbound.lstrip('+')}@{SIP_DOMAIN}",
        "expires_at": _iso(expires),
    }
    state.reservations[rid] = {
        "key": fields["key"],
        "body": reservation,
        "no_target_on_confirm": outcome == "confirm-no-target",
        "group": state.group_of(fields, expires.timestamp()),
    }
    if len(state.reservations) > 100_000:
        state.reservations.popitem(last=False)
    state.callers.after_reservation(
        request.app.state.core_api.data,
        state.config,
        caller=fields.get("caller_number"),
        inbound=inbound,
        payout=reservation["retreaver_payout"],
        now=now,
        expires=expires,
    )
    return _json(reservation)


async def confirm_rtb(request: Request) -> Response:
    state = _state(request)
    fields = await _fields(request)
    rid = request.path_params["uuid"]
    state.record(
        {"method": request.method, "path": f"/rtbs/{rid}.json", "fields": fields, "at": time.time()}
    )
    steered = await _steer(fields, state.config)
    if steered is not None:
        return steered
    found = state.reservations.get(rid)
    if found is None or found["key"] != fields.get("key"):
        return _json({"error": "not found"}, 404)
    if fields.get("status") != "confirmed":
        return _json({"error": "status must be confirmed"}, 422)
    if found["no_target_on_confirm"]:
        return _json({"uuid": rid, "status": "no-target"})
    if found["body"]["status"] != "confirmed":
        state.confirmed(found["group"])
    found["body"] = {**found["body"], "status": "confirmed"}
    return _json(found["body"])


async def auction_counts(request: Request) -> Response:
    state = _state(request)
    return _json(
        {"confirmations": state.confirmations, "loser_confirmations": state.loser_confirmations}
    )


async def get_config(request: Request) -> Response:
    return _json(_state(request).config)


async def set_config(request: Request) -> Response:
    data = _dec.decode(await request.body() or b"{}")
    if not isinstance(data, dict):
        return _json({"error": "config must be a JSON object"}, 400)
    problem = check_core_api_config(data)
    if problem:
        return _json({"error": problem}, 400)
    _state(request).config = data
    return _json(data)


async def list_requests(request: Request) -> Response:
    return _json(list(_state(request).received))


async def clear_requests(request: Request) -> Response:
    _state(request).received.clear()
    return _json({"cleared": True})


def routes() -> list[BaseRoute]:
    return [
        Route("/rtbs.json", create_rtb, methods=["POST"]),
        Route("/rtbs/{uuid}.json", confirm_rtb, methods=["PUT", "PATCH"]),
        Route("/_sandbox/config", get_config, methods=["GET"]),
        Route("/_sandbox/auctions", auction_counts, methods=["GET"]),
        Route("/_sandbox/config", set_config, methods=["POST", "PUT"]),
        Route("/_sandbox/requests", list_requests, methods=["GET"]),
        Route("/_sandbox/requests", clear_requests, methods=["DELETE"]),
    ]
