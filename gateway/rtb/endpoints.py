"""``POST /rtbs.json`` and ``PUT|PATCH /rtbs/{uuid}.json``: the publisher's front door.

Each handler is the same three steps: bound and parse the request (4xx, nothing
forwarded), let the shield or the RTB client produce an upstream answer, and return that
answer's status and bytes unchanged. The deadline starts when the request arrives, so the
time a ping spends here counts against ``GATEWAY_RTB_TIMEOUT_MS``.

Between parsing and the shield sits the guard (gateway/protect/): an RTB key outside the
allow-list gets 403 and a publisher or key over its rate limit 429, before the shield or
the upstream sees the ping.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from gateway.bodies import read_body
from gateway.rtb.ping import parse_confirmation, parse_ping
from gateway.shield.base import X_SHIELD
from gateway.state import Resources


async def create_reservation(request: Request) -> Response:
    res: Resources = request.state.res
    deadline = asyncio.get_running_loop().time() + res.settings.rtb_timeout_s
    body = await read_body(request, res.settings.max_body_bytes)
    ping = parse_ping(request.scope["query_string"], body, request.headers.get("content-type"))
    if res.guard is not None:
        await res.guard.admit_ping(ping.key, ping.publisher_id)
    rtb = res.rtb

    def forward():  # type: ignore[no-untyped-def]
        return rtb.reserve(ping.upstream_body(), deadline)

    answer, result = await res.shield.answer(ping, deadline, forward)
    request.scope["shield_result"] = result
    return Response(
        answer.body,
        status_code=answer.status,
        headers={"content-type": answer.content_type, "x-shield": X_SHIELD[result]},
    )


async def confirm_reservation(request: Request) -> Response:
    res: Resources = request.state.res
    deadline = asyncio.get_running_loop().time() + res.settings.rtb_timeout_s
    body = await read_body(request, res.settings.max_body_bytes)
    confirmation = parse_confirmation(
        request.path_params["uuid"],
        request.scope["query_string"],
        body,
        request.headers.get("content-type"),
    )
    if res.guard is not None:
        res.guard.admit_key(confirmation.key)
    answer = await res.rtb.confirm(
        confirmation.uuid, request.method, confirmation.upstream_body(), deadline
    )
    if answer.ok:
        await res.shield.confirmed(confirmation.key, confirmation.uuid, answer)
    return Response(
        answer.body, status_code=answer.status, headers={"content-type": answer.content_type}
    )
