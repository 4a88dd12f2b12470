"""``gateway check-config``: the effective settings as JSON, every secret masked, and the
auctions file (``GATEWAY_AUCTIONS_FILE``) validated and shown with its keys masked."""

from __future__ import annotations

import argparse
import os
import sys

import msgspec

from gateway.auction.file import describe, read_auctions
from gateway.cli.serve import invalid
from gateway.config import ConfigError, Settings


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        auctions = (
            read_auctions(settings.auctions_file, os.environ, settings.rtb_upstream_url)
            if settings.auctions_file
            else None
        )
    except ConfigError as exc:
        return invalid(exc)
    shown = settings.masked()
    if auctions is not None:
        # Names, modes, floors and upstreams; every key masked.
        shown["auctions"] = describe(auctions)
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(shown)).decode())
    sys.stdout.write("\n")
    return 0
