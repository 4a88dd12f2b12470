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
    _warn_descriptors(settings)
    return 0


def _warn_descriptors(settings: Settings) -> None:
    """On stderr (stdout stays JSON): the open-file limit ``serve`` would have, if short.

    ``serve`` raises the soft limit to the hard one, so that is what is compared.
    """
    import resource

    from gateway.protect.descriptors import Descriptors, current

    now = current(settings)
    after = now.hard if now.hard != resource.RLIM_INFINITY else max(now.soft, now.needed)
    warning = Descriptors(max(now.soft, after), now.hard, now.needed).warning()
    if warning is not None:
        print(f"warning: {warning}", file=sys.stderr)
