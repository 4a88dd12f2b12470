"""``gateway sandbox``: only the Retreaver stand-in (RTB + Core API), for local work."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.config import Settings
    from gateway.observe.logs import configure
    from gateway.sandbox.asgi import create_sandbox_app

    configure("text", "info")
    uvicorn.run(
        create_sandbox_app(Settings.from_env().sandbox_call_rate),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )
    return 0
