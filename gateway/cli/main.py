"""``gateway``'s parser and dispatch: the console script and ``python -m gateway``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from gateway import __version__
from gateway.cli import calls, check_config, report, sandbox, serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway", description="rtb-gateway: a front door for Retreaver RTB pings."
    )
    parser.add_argument("--version", action="version", version=f"rtb-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve.add_arguments(sub.add_parser("serve", help="run the gateway"))
    sandbox.add_arguments(sub.add_parser("sandbox", help="run only the Retreaver sandbox"))
    check = sub.add_parser("check-config", help="print the effective configuration, secrets masked")
    check.add_argument(
        "--describe",
        action="store_true",
        help="print each setting with its description, default and bounds instead of JSON",
    )
    calls_parser = sub.add_parser("calls", help="work with the Core API's call log")
    calls_sub = calls_parser.add_subparsers(dest="calls_command", required=True)
    calls.add_arguments(
        calls_sub.add_parser(
            "export", help="every call in a date range as NDJSON or CSV (paged, resumable)"
        )
    )
    report.add_arguments(
        sub.add_parser("report", help="publisher analytics from a running gateway (table or CSV)")
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "sandbox":
        return sandbox.run(args)
    if args.command == "calls":
        return calls.run(args)
    if args.command == "report":
        return report.run(args)
    if args.command == "check-config":
        return check_config.run(args)
    return serve.run(args)
