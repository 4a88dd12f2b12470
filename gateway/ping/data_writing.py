"""Call data writing: ``POST|GET /data_writing`` and ``GET /data_writing/{key}``.

Retreaver's other publisher API, served on retreaverdata.com: tags for a caller, before or
after the call. It is validated exactly as a ping is, by the same functions
(gateway/ping/parse.py): ``key`` (in the path for GET), ``caller_number`` normalised to
E.164 or ``call_uuid`` (a UUID), every other field a tag under the ping's tag rules. A
request with any problem gets one 4xx naming every field and is never forwarded.

A valid request goes through the guard (allow-list, rate limits; the key's limit, and
the publisher's when the request names one in ``publisher_id``/``source_id``), then to
``GATEWAY_DATA_WRITING_URL`` once, never retried (a retry could apply tags twice), never
shielded or cached, with the method the publisher used: a GET as
``GET /data_writing/{key}?...``, a POST as ``POST /data_writing`` with a JSON body. The
upstream's status, body and content type come back unchanged.

A GET may name its key in the query instead (``GET /data_writing?key=...``, what the
reference's "POST/GET https://retreaverdata.com/data_writing" leads PHP handlers to send):
it is served exactly as ``GET /data_writing/{key}``. A key in both the path and the query
must agree. A form body on a GET counts, merged over the query (body wins), as Rack reads
it on any method; any other body on a GET is ignored.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import InvalidFields, MethodNotAllowed
from gateway.ledger.tap import REQUEST, UPSTREAM_ANSWER
from gateway.ping.forwarder import Forwarder
from gateway.ping.parse import (
    _UUID,
    check_key,
    merged_fields,
    phone_field,
    scalar_values,
    tags_of,
)
from gateway.ping.requests import DataWrite
from gateway.protect.guard import Guard
from gateway.wire.bodies import read_body, read_form_of_get

KNOWN_FIELDS = frozenset({"key", "caller_number", "call_uuid"})


def validate_data_write(fields: dict[str, Any], path_key: str | None = None) -> DataWrite:
    """Merged fields (and the GET's path key) into a :class:`DataWrite`, every problem at once."""
    problems: dict[str, str] = {}
    if path_key is not None:
        if "key" in fields and fields["key"] != path_key:
            problems["key"] = "disagrees with the key in the path"
        fields = {**fields, "key": path_key}
    values = scalar_values(fields, problems)
    check_key(fields, values, problems)
    caller = phone_field(values, "caller_number", problems)
    call_uuid = values.get("call_uuid")
    if call_uuid is not None and not _UUID.fullmatch(call_uuid):
        problems["call_uuid"] = "must be a UUID like 9b653cf0-4835-493b-860c-aed9b7af2a4a"
    if "caller_number" not in fields and "call_uuid" not in fields:
        problems["caller_number"] = "is required (or call_uuid)"
    tags = tags_of(fields, values, KNOWN_FIELDS, problems)
    if problems:
        raise InvalidFields(problems)
    return DataWrite(
        values["key"], caller, call_uuid.lower() if call_uuid is not None else None, tags
    )


def parse_data_write(
    query: bytes, body: bytes, content_type: str | None, path_key: str | None = None
) -> DataWrite:
    return validate_data_write(merged_fields(query, body, content_type), path_key)


@dataclass(kw_only=True, eq=False)
class DataWriting:
    """``POST /data_writing`` (JSON, form or query) and ``GET /data_writing[/{key}]`` (query
    and form body), built by ``create_app`` with the pooled RTB client (its data-writing
    base URL) and the ping's guard."""

    rtb: Forwarder
    guard: Guard
    timeout_s: float
    max_body_bytes: int

    async def handle(self, request: Request) -> Response:
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        if request.method == "HEAD":
            # Starlette routes HEAD wherever GET is served; a HEAD must not write tags
            # (nor be taken for a POST below).
            raise MethodNotAllowed(
                "a data write is a GET or a POST, not a HEAD", headers={"Allow": "GET, POST"}
            )
        query: bytes = request.scope["query_string"]
        if request.method == "GET":
            form = await read_form_of_get(request, self.max_body_bytes)
            write = parse_data_write(
                query,
                form,
                request.headers.get("content-type") if form else None,
                path_key=request.path_params.get("key"),
            )
        else:
            body = await read_body(request, self.max_body_bytes)
            write = parse_data_write(query, body, request.headers.get("content-type"))
        request.scope[REQUEST] = write
        await self.guard.admit_ping(write.key, write.publisher_id)
        if request.method == "GET":
            answer = await self.rtb.write_data("GET", write.upstream_get(), None, deadline)
        else:
            body = write.upstream_body()
            answer = await self.rtb.write_data("POST", "/data_writing", body, deadline)
        request.scope[UPSTREAM_ANSWER] = answer
        return Response(
            answer.body, status_code=answer.status, headers={"content-type": answer.content_type}
        )
