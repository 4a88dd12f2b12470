"""Call data writing: ``POST /data_writing`` and ``GET /data_writing/{key}`` (CONTRACT §3).

Retreaver's other publisher API, served on retreaverdata.com: tags for a caller, before or
after the call. It is validated exactly as a ping is, by the same functions
(gateway/rtb/ping.py): ``key`` (in the path for GET), ``caller_number`` normalised to
E.164 or ``call_uuid`` (a UUID), every other field a tag under the ping's tag rules. A
request with any problem gets one 4xx naming every field and is never forwarded.

A valid request goes through the guard (allow-list, rate limits; the key's limit, and
the publisher's when the request names one in ``publisher_id``/``source_id``), then to
``GATEWAY_DATA_WRITING_URL`` once, never retried (a retry could apply tags twice), never
shielded or cached, with the method the publisher used: a GET as
``GET /data_writing/{key}?...``, a POST as ``POST /data_writing`` with a JSON body. The
upstream's status, body and content type come back unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.bodies import read_body
from gateway.errors import invalid_request
from gateway.rtb.ping import (
    _UUID,
    check_key,
    merged_fields,
    phone_field,
    scalar_values,
    tags_of,
)
from gateway.state import Resources

KNOWN_FIELDS = frozenset({"key", "caller_number", "call_uuid"})

_json_encoder = msgspec.json.Encoder()


class DataWrite(msgspec.Struct, frozen=True):
    """A validated call data write: what may be forwarded to retreaverdata.com."""

    key: str
    caller_number: str | None = None
    call_uuid: str | None = None
    tags: dict[str, str] = {}

    @property
    def publisher_id(self) -> str | None:
        """The publisher it names, if any (for the guard's per-publisher limit)."""
        return self.tags.get("publisher_id") or self.tags.get("source_id")

    def upstream_fields(self) -> dict[str, str]:
        fields = {"key": self.key}
        if self.caller_number is not None:
            fields["caller_number"] = self.caller_number
        if self.call_uuid is not None:
            fields["call_uuid"] = self.call_uuid
        fields.update(self.tags)
        return fields

    def upstream_body(self) -> bytes:
        return _json_encoder.encode(self.upstream_fields())

    def upstream_get(self) -> str:
        """``/data_writing/{key}?...``: the key in the path, the rest in the query."""
        query = {k: v for k, v in self.upstream_fields().items() if k != "key"}
        return f"/data_writing/{quote(self.key, safe='')}?{urlencode(query)}"


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
        raise invalid_request(problems)
    return DataWrite(
        values["key"], caller, call_uuid.lower() if call_uuid is not None else None, tags
    )


def parse_data_write(
    query: bytes, body: bytes, content_type: str | None, path_key: str | None = None
) -> DataWrite:
    return validate_data_write(merged_fields(query, body, content_type), path_key)


async def data_writing(request: Request) -> Response:
    """``POST /data_writing`` (JSON, form or query) and ``GET /data_writing/{key}`` (query)."""
    res: Resources = request.state.res
    deadline = asyncio.get_running_loop().time() + res.settings.rtb_timeout_s
    query: bytes = request.scope["query_string"]
    if request.method == "GET":
        write = parse_data_write(query, b"", None, path_key=request.path_params["key"])
    else:
        body = await read_body(request, res.settings.max_body_bytes)
        write = parse_data_write(query, body, request.headers.get("content-type"))
    if res.guard is not None:
        await res.guard.admit_ping(write.key, write.publisher_id)
    if request.method == "GET":
        answer = await res.rtb.write_data("GET", write.upstream_get(), None, deadline)
    else:
        answer = await res.rtb.write_data("POST", "/data_writing", write.upstream_body(), deadline)
    return Response(
        answer.body, status_code=answer.status, headers={"content-type": answer.content_type}
    )
