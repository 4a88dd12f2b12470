"""The ``gateway`` command: serve | sandbox | check-config (CONTRACT.md §1)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import msgspec

from gateway import __version__
from gateway.config import ConfigError, Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway", description="rtb-gateway: a front door for Retreaver RTB pings."
    )
    parser.add_argument("--version", action="version", version=f"rtb-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default=None, help="bind address (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8080)")
    serve.add_argument("--workers", type=int, default=None, help="worker processes (default 1)")
    serve.add_argument(
        "--sandbox",
        action="store_true",
        default=None,
        help="point both upstreams at the built-in Retreaver sandbox",
    )

    sandbox = sub.add_parser("sandbox", help="run only the Retreaver sandbox")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8081)

    sub.add_parser("check-config", help="print the effective configuration, secrets masked")

    calls = sub.add_parser("calls", help="work with the Core API's call log")
    calls_sub = calls.add_subparsers(dest="calls_command", required=True)
    export = calls_sub.add_parser(
        "export", help="every call in a date range as NDJSON or CSV (paged, resumable)"
    )
    from gateway.export import add_arguments

    add_arguments(export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sandbox":
        return _sandbox(args.host, args.port)
    if args.command == "calls":
        from gateway.export import main as export_main

        return export_main(args)
    try:
        if args.command == "serve":
            settings = Settings.from_env(
                host=args.host, port=args.port, workers=args.workers, sandbox=args.sandbox
            )
        else:
            settings = Settings.from_env()
    except ConfigError as exc:
        print(f"invalid configuration: {exc.variable}: {exc.message}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(settings.masked())).decode())
        sys.stdout.write("\n")
        return 0
    from gateway.server import serve

    return serve(settings)


def _sandbox(host: str, port: int) -> int:
    import uvicorn

    from gateway.logs import configure
    from gateway.sandbox.app import create_sandbox_app

    configure("text", "info")
    uvicorn.run(
        create_sandbox_app(),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
