"""Reading request bodies with a hard size limit, before anything parses them.

The limit is enforced twice: on a declared ``Content-Length`` (refused before a byte is
read) and while streaming (chunked bodies, or a client that lies about its length), so a
large body never sits in memory beyond the limit.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from gateway.errors import GatewayError


def too_large(limit: int) -> GatewayError:
    return GatewayError(413, "payload_too_large", f"the body is larger than {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise GatewayError(400, "bad_request", "Content-Length is not a number")
        if int(declared) > limit:
            raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise GatewayError(400, "client_disconnected", "the client went away") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
