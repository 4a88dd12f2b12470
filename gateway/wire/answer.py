"""What an upstream said, in the one shape the rest of the gateway passes around.

Also the checks every upstream answer passes at the boundary, before anything
(the ping shield, the lookup cache) decides to keep it:

- its size: each client refuses an answer over its configured limit with
  :class:`AnswerTooLarge`, from its ``Content-Length`` before reading, else while
  reading, and drops the connection so the rest of it is never read into a pool's
  buffers (``core_api.read_bounded``, ``http1``'s own reader);
- its status: one outside 100-599 (:func:`valid_status`) is a broken answer (502);
- its headers: a value the gateway could not send on (not latin-1, or carrying CR, LF
  or NUL) would fail only when the client's answer is written, after the shield stored
  it, so every repeat would fail too. :func:`deliverable` finds them here instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 9110 15: a status is three digits 100-599; parsers (llhttp, h11) accept any
# three digits, and a client (uvicorn included) cannot be sent the rest.
STATUS_OUTSIDE_RANGE = "status code outside 100-599"


def valid_status(status: int) -> bool:
    return 100 <= status <= 599


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    """An upstream's status, body bytes and content type, kept exactly as received."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class AnswerTooLarge(Exception):
    """The upstream's answer is over the limit; its connection has been dropped."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"answer over {limit} bytes")
        self.limit = limit


_UNSENDABLE = re.compile("[\r\n\0]")


def deliverable(value: str) -> bool:
    """Can this header value be written to a client as it is?"""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return _UNSENDABLE.search(value) is None


def content_type_for(value: str | None, body: bytes, default: str = "application/json") -> str:
    """The upstream's ``Content-Type`` if it can be sent on, else a truthful stand-in."""
    if value is None:
        return default
    if deliverable(value):
        return value
    return "application/json" if body.lstrip()[:1] in (b"{", b"[") else "application/octet-stream"
