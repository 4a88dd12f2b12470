"""The sandbox's call data writing (2026-05 reference, "Call Data Writing"), the API
Retreaver serves on retreaverdata.com: ``POST /data_writing`` and ``GET /data_writing``
("POST/GET https://retreaverdata.com/data_writing"), and ``GET /data_writing/{key}``.
Fields come from the query and the body (JSON or form) on any method, the body winning, as
Rack reads them; the key in the path wins over one in the query, as Rails' path
parameters do.

``key`` must be a seeded postback key allowed to write call data (see
``gateway/sandbox/api/caller_lists.py``; ``0b4d1a57-6c53-4c1e-9f0e-5d2a8f6b7c10``
for company 1), else 401. Every other field but ``caller_number``/``call_uuid`` is a tag.
Answers, as the reference shows them:

- ``call_uuid`` of a call of the key's company, or a ``caller_number`` with a finished
  call: the tags are applied, ``"status": "completed call found, tags applied"`` with the
  ``call_uuid``;
- a ``caller_number`` without a call: the tags are stored for the next call,
  ``"status": "call not found, tags stored"`` with the ``caller_number``;
- a ``call_uuid`` the company does not have: 404 (the reference shows no answer for it);
- neither: 422.

Requests are recorded in ``GET /_sandbox/requests`` with the pings (``path`` tells them
apart), and ``sandbox_status=NNN`` steers the answer as it does for pings.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.sandbox.api.postback import POSTBACK_KEYS
from gateway.sandbox.bidder import _fields, _json, _received, _state

_NOT_TAGS = frozenset({"key", "caller_number", "call_uuid"})


async def _write(request: Request, fields: dict[str, Any]) -> Response:
    state = _state(request)
    steered = await _received(request, "/data_writing", fields)
    if steered is not None:
        return steered
    key = POSTBACK_KEYS.get(str(fields.get("key", "")))
    if key is None or "data_writing" not in key.kinds:
        return _json({"error": "Unauthorized -- unknown postback key"}, 401)
    tags = {k: str(v) for k, v in fields.items() if k not in _NOT_TAGS}
    calls = request.app.state.core_api.data.by_company[key.company].calls
    call_uuid, caller = fields.get("call_uuid"), fields.get("caller_number")
    if call_uuid:
        call = next((c for c in calls if c.uuid == str(call_uuid).lower()), None)
        if call is None:
            return _json({"error": "call not found"}, 404)
    elif caller:
        call = max(
            (c for c in calls if c.caller == caller), key=lambda c: c.created_at, default=None
        )
        if call is None:
            state.stored_tags.setdefault(str(caller), {}).update(tags)
            return _json(
                {
                    "tag_values": tags,
                    "caller_number": caller,
                    "status": "call not found, tags stored",
                }
            )
    else:
        return _json({"error": "caller_number or call_uuid is required"}, 422)
    call.v2["tags"].update(tags)
    status = "completed call found, tags applied"
    return _json({"tag_values": tags, "call_uuid": call.uuid, "status": status})


async def post_data(request: Request) -> Response:
    return await _write(request, await _fields(request))


async def get_data(request: Request) -> Response:
    fields = await _fields(request)
    if "key" in request.path_params:
        fields["key"] = request.path_params["key"]
    return await _write(request, fields)


def routes() -> list[BaseRoute]:
    return [
        Route("/data_writing", post_data, methods=["POST"]),
        Route("/data_writing", get_data, methods=["GET"]),
        Route("/data_writing/{key}", get_data, methods=["GET"]),
    ]
