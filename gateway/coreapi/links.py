"""Pointing the Core API's pagination ``Link`` headers back at the gateway.

A client that follows ``rel="next"`` must come back through the gateway, at the origin
it used: its ``Host`` header, or ``X-Forwarded-Host``/``-Proto`` when the operator has
said a trusted proxy sets them (``GATEWAY_TRUST_FORWARDED_HEADERS``). Only the scheme
and authority change (CONTRACT §4): the path stays as the upstream wrote it, because the
gateway mirrors the Core API under the same paths, and so does every byte of the query,
the client's own ``api_key`` included, so a client that follows ``rel="next"`` exactly as
given gets the next page (every pagination helper does that). The key goes back only to
the client that sent it, in the answer to its own request; the logs still mask it.

Answers are cached with the upstream's own ``Link`` and rewritten per request, so one
client's ``Host`` never leaks into another client's answer.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.types import Scope

_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.?)+(?::[0-9]{1,5})?")
_IPV6_HOST = re.compile(r"\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?")
_LINK_URL = re.compile(r"<([^>]*)>")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _valid_host(host: str) -> bool:
    return len(host) <= 260 and bool(_HOST.fullmatch(host) or _IPV6_HOST.fullmatch(host))


def client_origin(scope: Scope, *, trust_forwarded: bool) -> str:
    """``scheme://host[:port]`` as the client addressed the gateway."""
    scheme = scope.get("scheme", "http")
    host: str | None = None
    if trust_forwarded:
        forwarded_host = _header(scope, b"x-forwarded-host")
        if forwarded_host:
            candidate = forwarded_host.split(",", 1)[0].strip()
            host = candidate if _valid_host(candidate) else None
        forwarded_proto = _header(scope, b"x-forwarded-proto")
        if forwarded_proto:
            proto = forwarded_proto.split(",", 1)[0].strip().lower()
            if proto in ("http", "https"):
                scheme = proto
    if host is None:
        candidate = (_header(scope, b"host") or "").strip()
        host = candidate if _valid_host(candidate) else None
    if host is None:
        server = scope.get("server") or ("localhost", None)
        addr, port = server
        addr = f"[{addr}]" if ":" in addr else addr
        host = addr if port is None else f"{addr}:{port}"
    return f"{scheme}://{host}"


def rewrite_link(value: str, origin: str) -> str:
    """Every absolute URL in a ``Link`` value re-pointed at ``origin``; nothing else."""
    parts = urlsplit(origin)

    def repoint(match: re.Match[str]) -> str:
        url = match.group(1)
        try:
            target = urlsplit(url)
        except ValueError:
            return "<>"
        if not target.scheme or not target.netloc:
            return match.group(0)  # relative: it already resolves against the gateway
        rest = url[len(target.scheme) + 3 + len(target.netloc) :]
        return f"<{parts.scheme}://{parts.netloc}{rest}>"

    return _LINK_URL.sub(repoint, value)
