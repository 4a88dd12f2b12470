"""create_sandbox_app: the Retreaver stand-in behind ``gateway sandbox``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import Response

from gateway.sandbox import api as core_api
from gateway.sandbox import bidder as rtb
from gateway.sandbox import tagging as data_writing
from gateway.sandbox.api.render import EXCEPTION_HANDLERS
from gateway.sandbox.bidder import SandboxState
from gateway.sandbox.callers import DEFAULT_CALL_RATE


async def _healthz(request: object) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


def create_sandbox_app(call_rate: float = DEFAULT_CALL_RATE) -> Starlette:
    from starlette.middleware import Middleware
    from starlette.routing import Route

    state = SandboxState(call_rate)
    core = core_api.CoreApiState(received=state.core_received)
    routes = [
        *rtb.routes(),
        *data_writing.routes(),
        Route("/healthz", _healthz, methods=["GET"]),
        *core_api.routes(),
    ]
    guard = Middleware(core_api.CoreApiGuard, config=lambda: state.config, core=core)
    app = Starlette(routes=routes, middleware=[guard], exception_handlers=EXCEPTION_HANDLERS)
    app.state.sandbox = state
    app.state.core_api = core
    return app
