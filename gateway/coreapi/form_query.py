"""A form body on a Core API GET, merged into the query the upstream receives.

Retreaver is a Rails app and Rack reads an ``application/x-www-form-urlencoded`` body on
any method, so scripts send their filters there: Python's ``requests.get(url, data=...)``
puts ``created_at_start``, ``order`` and ``page`` in the body of a GET. Forwarding only the
URL's query would answer every such request with page 1, newest first, outside the
window, and a loop that pages until it sees an old call would never end. So the body's
parameters join the query, a body parameter replacing every query parameter of the same
name (the body wins, as on the publisher routes), and the merged query is what is
forwarded, validated (reports) and cached on: two requests that mean the same thing share
an entry, and two that differ only in their bodies never do.

Only the bytes are rearranged: each parameter keeps the encoding the client gave it, and
the body is held to the same rules as a query (percent-encoded printable ASCII, the
merged query within the query's bound), so nothing reaches the upstream in a body that
would have been refused in the URL.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from gateway.errors import InvalidQuery, UriTooLong

# Printable ASCII without space or "#": what a well-formed request target carries.
QUERY_OK = re.compile(rb"[\x21-\x22\x24-\x7e]*")


def _name(part: bytes) -> str:
    return unquote_plus(part.split(b"=", 1)[0].decode("ascii"))


def merge_form(query: bytes, form: bytes, *, max_bytes: int) -> bytes:
    """``query`` with the parameters of ``form`` (a GET's form body) merged over it."""
    form = form.strip(b" \t\r\n")
    if not form:
        return query
    if not QUERY_OK.fullmatch(form):
        raise InvalidQuery("the form body must be percent-encoded ASCII, as a query string is")
    body_parts = [part for part in form.split(b"&") if part]
    replaced = {_name(part) for part in body_parts}
    kept = [part for part in query.split(b"&") if part and _name(part) not in replaced]
    merged = b"&".join(kept + body_parts)
    if len(merged) > max_bytes:
        raise UriTooLong(f"the query string and form body together are over {max_bytes} bytes")
    return merged
