"""A form body on a GET joins the query, as Rack reads one on any method.

Retreaver is a Rails app: ``requests.get(url, data={...})`` sends its parameters in a
form body and Retreaver uses them. The sandbox does the same, so a script tried against
it alone behaves as it will against Retreaver, and the gateway's own merge (which sends
the merged query upstream) is not hidden by a sandbox that ignores bodies. A body
parameter replaces every query parameter of its name; any other body on a GET is
ignored. Bodies over :data:`MAX_FORM_BYTES` are ignored too (the sandbox is a stand-in,
not a guard).
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from starlette.types import Message, Receive, Scope

MAX_FORM_BYTES = 65536
FORM = b"application/x-www-form-urlencoded"


def _name(part: str) -> str:
    return unquote_plus(part.split("=", 1)[0])


def merged_query(query: str, form: str) -> str:
    body_parts = [p for p in form.strip().split("&") if p]
    replaced = {_name(p) for p in body_parts}
    kept = [p for p in query.split("&") if p and _name(p) not in replaced]
    return "&".join(kept + body_parts)


async def merge_get_form(scope: Scope, receive: Receive) -> Receive:
    """For a GET or HEAD with a form body: the body merged into ``scope["query_string"]``
    and a ``receive`` that replays it; otherwise ``receive`` unchanged."""
    if scope["method"] not in ("GET", "HEAD"):
        return receive
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    if content_type.split(b";", 1)[0].strip().lower() != FORM:
        return receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return receive
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > MAX_FORM_BYTES or not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if size <= MAX_FORM_BYTES and body.strip():
        query = scope.get("query_string", b"").decode("latin-1")
        scope["query_string"] = merged_query(query, body.decode("latin-1")).encode("latin-1")
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
