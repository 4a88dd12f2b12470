"""``gateway serve``: read the settings (flags win over ``GATEWAY_*``) and run the server."""

from __future__ import annotations

import argparse
import os
import sys

from gateway.config import ConfigError, Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="bind address (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="port (default 8080)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default 1)")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        default=None,
        help="point both upstreams at the built-in Retreaver sandbox",
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(
            host=args.host, port=args.port, workers=args.workers, sandbox=args.sandbox
        )
        if settings.auctions_file:
            # Refused here, by name, rather than as a traceback from every worker.
            from gateway.auction.file import read_auctions

            read_auctions(settings.auctions_file, os.environ, settings.rtb_upstream_url)
    except ConfigError as exc:
        return invalid(exc)
    from gateway.wire.server import serve

    return serve(settings)


def invalid(exc: ConfigError) -> int:
    """Exit 2 naming the variable to fix (shared with check-config)."""
    print(f"invalid configuration: {exc.variable}: {exc.message}", file=sys.stderr)
    return 2
