"""create_sandbox_app: the Retreaver stand-in behind ``gateway sandbox``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import Response

from gateway.sandbox import rtb
from gateway.sandbox.rtb import SandboxState


async def _healthz(request: object) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


def create_sandbox_app() -> Starlette:
    from starlette.routing import Route

    routes = [*rtb.routes(), Route("/healthz", _healthz, methods=["GET"])]
    app = Starlette(routes=routes)
    app.state.sandbox = SandboxState()
    return app
