"""Reading request bodies with a hard size limit, before anything parses them.

The limit is enforced twice: on a declared ``Content-Length`` (refused before a byte is
read) and while streaming (chunked bodies, or a client that lies about its length), so a
large body never sits in memory beyond the limit.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Receive

from gateway.errors import BadRequest, ClientDisconnected, PayloadTooLarge

FORM = "application/x-www-form-urlencoded"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is larger than {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    return await receive_body(request.receive, limit, request.headers.get("content-length"))


def is_form(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` names a form body (``application/x-www-form-urlencoded``)."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == FORM


async def read_form_of_get(request: Request, limit: int) -> bytes:
    """The form body of a GET (or HEAD), else ``b""`` without reading anything.

    Retreaver is a Rails app and Rack reads a form body on any method, so clients send
    GETs with their parameters there (Python's ``requests.get(url, data=...)``, ``curl -X
    GET -d ...``); those parameters count. Any other body on a GET is left unread, as
    before.
    """
    if not is_form(request.headers.get("content-type")):
        return b""
    return await read_body(request, limit)


async def receive_body(receive: Receive, limit: int, declared: str | None) -> bytes:
    """The whole body from the ASGI ``receive`` channel, refused past ``limit`` bytes."""
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("Content-Length is not a number")
        if int(declared) > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)
