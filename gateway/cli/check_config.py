"""``gateway check-config``: the effective settings as JSON, every secret masked, and the
auctions file (``GATEWAY_AUCTIONS_FILE``) validated and shown with its keys masked.

``--describe`` prints the same values for people: one setting a line with the
description, default and bounds declared on :class:`gateway.config.Settings`, the text
the settings reference and the Helm chart are generated from.
"""

from __future__ import annotations

import argparse
import os
import sys

import msgspec

from gateway.auction.file import describe as describe_auctions
from gateway.auction.file import read_auctions
from gateway.cli.serve import invalid
from gateway.cli.settings_doc import describe
from gateway.config import ConfigError, Settings, deprecations, setting_specs


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
    for line in deprecations():
        sys.stderr.write(f"deprecated: {line}\n")
    shown = settings.masked()
    if auctions is not None:
        # Names, modes, floors and upstreams; every key masked.
        shown["auctions"] = describe_auctions(auctions)
    if getattr(args, "describe", False):
        for spec in setting_specs():
            value = shown[spec.variable]
            text = "" if value is None else msgspec.json.encode(value).decode()
            sys.stdout.write(f"{spec.variable}={text}\n    {describe(spec)}\n")
        return 0
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(shown)).decode())
    sys.stdout.write("\n")
    _warn_descriptors(settings)
    if settings.ledger_secret is None:
        sys.stderr.write(
            "note: GATEWAY_LEDGER_SECRET is unset: caller digests use a random secret per "
            "start and match only within one run\n"
        )
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
