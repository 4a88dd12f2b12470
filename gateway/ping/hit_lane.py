"""Shield hits answered from the HTTP protocol, without the ASGI machinery.

A repeat answered from process memory (the near-cache in front of Redis, or the
in-process store) does no I/O, yet the ASGI way makes it pay for a task, a scope's round
through four middleware layers, a closure per wrapped ``send`` and uvicorn's response
cycle: about a third of the CPU a hit costs. So the protocol (gateway/wire/protocol.py)
holds back the task of a complete, small ``POST /rtbs.json`` until its body is in, and
asks :class:`HitLane` first. The lane answers only what it can answer at once and exactly
as the ASGI way would:

- the protections of the load-shedding layer hold (its query-length and in-flight
  checks, :meth:`ProtectMiddleware.admits_now`); those of the connection are the
  protocol's own and apply before any of this;
- the endpoint's own parsing, allow-list and shield answer the ping
  (:meth:`CreateReservation.answer_now`); rate limits (which may live in Redis), auction
  keys, pings without a caller, misses and every refusal take the ASGI way, where they
  are answered, counted and logged as always (a ping parsed here is not parsed again);
- the request middleware adds the same headers in the same order and records the same
  metrics, ``/stats``, access line, outcome and ledger event
  (:meth:`RequestMiddleware.answer_now`).

tests/wire/test_hit_lane.py runs the same pings both ways and compares the bytes on the
wire and everything recorded. ``GATEWAY_HIT_LANE=off`` turns it off.
"""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Scope

from gateway.observe.middleware import RequestMiddleware
from gateway.ping.front_door import RtbFastLane
from gateway.protect.shedding import ProtectMiddleware


class HitLane:
    """``lane(scope, body)``: the answer's ``http.response.start`` and body, or None."""

    def __init__(
        self,
        *,
        request: RequestMiddleware,
        protect: ProtectMiddleware,
        pings: RtbFastLane,
        max_body_bytes: int,
    ) -> None:
        self.endpoint = pings.endpoint  # the CreateReservation that answers pings
        self._observe = request.answer_now
        self._admits = protect.admits_now
        self._answer = self.endpoint.answer_now
        self._takes = pings.takes
        self._routed = pings.routed
        self.max_body_bytes = max_body_bytes

    def wants(self, scope: Scope) -> bool:
        """Whether to hold this request's task back until its body is in and ask the lane.

        Only a ping (``POST /rtbs.json``) whose ``Content-Length`` is within the body limit:
        anything larger, chunked or unannounced is read by the app as it streams in."""
        if not self._takes(scope):
            return False
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                if length is not None:
                    return False
                length = value
            elif name == b"transfer-encoding":
                return False
        return length is not None and length.isdigit() and int(length) <= self.max_body_bytes

    def __call__(self, scope: Scope, body: bytes) -> tuple[Message, bytes] | None:
        if not self._admits(scope):
            return None
        self._routed(scope)
        return self._observe(scope, body, self._answer)


def find_lane(app: Any, max_body_bytes: int) -> HitLane | None:
    """The lane for a started app, from the middleware instances Starlette built; None
    when the stack is not the gateway's (a test's own middleware, for one)."""
    request = protect = pings = None
    layer = getattr(app, "middleware_stack", None)
    for _ in range(16):
        if layer is None:
            break
        if isinstance(layer, RequestMiddleware):
            request = layer
        elif isinstance(layer, ProtectMiddleware):
            protect = layer
        elif isinstance(layer, RtbFastLane):
            pings = layer
        layer = getattr(layer, "app", None)
    if (
        request is None
        or protect is None
        or pings is None
        or not hasattr(pings.endpoint.shield, "answer_now")
    ):
        return None
    return HitLane(request=request, protect=protect, pings=pings, max_body_bytes=max_body_bytes)
