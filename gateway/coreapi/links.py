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
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


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
    """Every URL in a ``Link`` value that could lead off the gateway re-pointed at
    ``origin``; a link whose URL cannot be made safe is dropped whole.

    A client resolves these URLs as browsers do (the WHATWG URL rules, which most HTTP
    libraries approximate): tabs and newlines vanish, leading spaces and controls are
    trimmed, and before the query a backslash is a slash. So ``<//evil/…>``,
    ``<\\\\evil/…>``, ``</\\evil>`` and ``<http:\\\\evil/…>`` all name another host, and
    would carry the client's ``api_key`` there: the URL is read that way here too, and
    anything naming a host (with ``http``/``https`` or no scheme) gets the gateway's
    origin. Any other scheme (``javascript:``, ``ftp:``, …) drops its link; a plain
    relative URL already resolves against the gateway and stays.
    """
    parts = urlsplit(origin)
    base = f"{parts.scheme}://{parts.netloc}"
    kept = []
    for link in _split_links(value):
        match = _LINK_URL.search(link)
        if match is None:
            kept.append(link)
            continue
        url = _repoint(match.group(1), base)
        if url is None:
            continue
        kept.append(f"{link[: match.start()]}<{url}>{link[match.end() :]}")
    return ",".join(kept).strip()


def _repoint(url: str, base: str) -> str | None:
    """``url`` safe to hand the client, or ``None`` when it must be dropped."""
    cleaned = _TAB_OR_NEWLINE.sub("", url).strip(_C0_AND_SPACE)
    cut = min((i for i in (cleaned.find("?"), cleaned.find("#")) if i >= 0), default=None)
    head, tail = (cleaned, "") if cut is None else (cleaned[:cut], cleaned[cut:])
    head = head.replace("\\", "/")
    scheme = _SCHEME.match(head)
    if scheme is not None:
        if scheme.group(1).lower() not in ("http", "https"):
            return None
        authority_and_path = head[scheme.end() :].lstrip("/")
    elif head.startswith("//"):
        authority_and_path = head.lstrip("/")
    else:
        return head + tail  # relative: it already resolves against the gateway
    slash = authority_and_path.find("/")
    path = "/" if slash < 0 else authority_and_path[slash:]
    return f"{base}{path}{tail}"


def _split_links(value: str) -> list[str]:
    """A ``Link`` value's link-values: split at commas outside ``<…>`` and quotes."""
    links: list[str] = []
    start = 0
    in_url = in_quote = False
    for i, char in enumerate(value):
        if in_quote:
            if char == '"':
                in_quote = False
        elif in_url:
            if char == ">":
                in_url = False
        elif char == "<":
            in_url = True
        elif char == '"':
            in_quote = True
        elif char == ",":
            links.append(value[start:i])
            start = i + 1
    links.append(value[start:])
    return [link for link in links if link.strip()]
