"""``gateway check-config``: the effective settings as JSON, every secret masked."""

from __future__ import annotations

import argparse
import sys

import msgspec

from gateway.cli.serve import invalid
from gateway.config import ConfigError, Settings


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        return invalid(exc)
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(settings.masked())).decode())
    sys.stdout.write("\n")
    if settings.ledger_secret is None:
        sys.stderr.write(
            "note: GATEWAY_LEDGER_SECRET is unset: caller digests use a random secret per "
            "start and match only within one run\n"
        )
    return 0
