"""Liveness, readiness and the drain state that SIGTERM flips.

Kubernetes stops sending traffic only after readiness fails a few times, so on SIGTERM
``/readyz`` turns 503 at once while the gateway keeps serving for
``GATEWAY_DRAIN_DELAY_S``; only then does the server stop accepting (see ``server.py``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import Draining, NotReady

_OK = b'{"status":"ok"}'


class DrainState:
    """Whether this process should still be handed new traffic."""

    def __init__(self) -> None:
        self.ready = False
        self.draining = False

    def start_draining(self) -> None:
        self.draining = True


class Health:
    """``/healthz`` (the process answers) and ``/readyz`` (it wants traffic)."""

    def __init__(self, drain: DrainState) -> None:
        self.drain = drain

    async def healthz(self, request: Request) -> Response:
        return Response(_OK, media_type="application/json")

    async def readyz(self, request: Request) -> Response:
        if self.drain.draining:
            return Draining().response()
        if not self.drain.ready:
            return NotReady("the gateway is starting").response()
        return Response(_OK, media_type="application/json")
