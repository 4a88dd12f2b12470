"""Liveness, readiness and the drain state that SIGTERM flips.

Kubernetes stops sending traffic only after readiness fails a few times, so on SIGTERM
``/readyz`` turns 503 at once while the gateway keeps serving for
``GATEWAY_DRAIN_DELAY_S``; only then does the server stop accepting (see ``server.py``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

_OK = b'{"status":"ok"}'
_DRAINING = b'{"error":"draining","message":"the gateway is shutting down"}'
_STARTING = b'{"error":"not_ready","message":"the gateway is starting"}'


class DrainState:
    """Whether this process should still be handed new traffic."""

    def __init__(self) -> None:
        self.ready = False
        self.draining = False

    def start_draining(self) -> None:
        self.draining = True


async def healthz(request: Request) -> Response:
    return Response(_OK, media_type="application/json")


async def readyz(request: Request) -> Response:
    state: DrainState = request.app.state.drain
    if state.draining:
        return Response(_DRAINING, status_code=503, media_type="application/json")
    if not state.ready:
        return Response(_STARTING, status_code=503, media_type="application/json")
    return Response(_OK, media_type="application/json")
