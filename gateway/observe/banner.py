"""The first-start line: where the gateway listens and what it forwards to, in one line.

Logged once per replica, after the listening socket is bound (by the single process, or
by the supervisor with ``--workers N``), so a person starting ``gateway serve`` sees at
once the URL to call, both upstreams (or that the built-in sandbox answers), the shield
store (Redis URLs with any password masked) and the worker count. The message holds the
URL (and the status page's); the rest are fields, which the text format prints as
``name=value``.
"""

from __future__ import annotations

import logging
import socket

from gateway import __version__
from gateway.config import Settings, mask_url

log = logging.getLogger("gateway")


def store_description(settings: Settings) -> str:
    """``in-process``, or the Redis URL with any password masked."""
    if settings.redis_url is None:
        return "in-process"
    return mask_url(settings.redis_url.reveal())


def ledger_description(settings: Settings) -> str:
    """``in-process``, or the PostgreSQL URL with any password masked."""
    if settings.ledger_url is None or settings.sandbox:
        return "in-process"
    return mask_url(settings.ledger_url.reveal())


def listening_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def fields(settings: Settings) -> dict[str, object]:
    def upstream(value: str) -> str:
        return "sandbox" if settings.sandbox else mask_url(value)

    return {
        "rtb": upstream(settings.rtb_upstream_url),
        "core_api": upstream(settings.core_api_url),
        "shield_store": store_description(settings),
        "workers": settings.workers,
        "ledger": ledger_description(settings),
        "version": __version__,
    }


def announce(settings: Settings, sock: socket.socket) -> None:
    url = listening_url(sock)
    log.info(f"listening on {url} (live status: {url}/status)", extra=fields(settings))
