"""Every Core API route the sandbox serves: one table, in the reference's order.

``{fmt}`` is the extension: ``json`` or ``xml`` for the unversioned API, ``json`` only
for ``/api/v2/...`` and ``/api/v1/reports``; any other extension is 406. Path parameters
named ``key`` are the id or customer id the route addresses; ``number`` is a phone number
(``+`` kept).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.sandbox.api import call_log as calls
from gateway.sandbox.api import caller_lists, reads, writes
from gateway.sandbox.api import report_rows as reports
from gateway.sandbox.api.context import Handler, core_state, endpoint
from gateway.sandbox.api.reads import (
    AFFILIATES,
    CAMPAIGNS,
    CONTACTS,
    NUMBER_POOLS,
    NUMBERS,
    STATIC_CALLER_NUMBERS,
    SUPPRESSED_NUMBERS,
    TARGET_GROUPS,
    TARGETS,
)

JSON_ONLY = ("json",)

#: (path, method, handler, formats). Reads first; the write routes follow.
READS: list[tuple[str, Handler, tuple[str, ...] | None]] = [
    ("/calls.{fmt}", calls.list_v1, None),
    ("/calls/{uuid}.{fmt}", calls.show_v1, None),
    ("/api/v1/calls.{fmt}", calls.list_v1, None),
    ("/api/v1/calls/{uuid}.{fmt}", calls.show_v1, None),
    *(
        route
        for v in (2, 3, 4)
        for route in (
            (f"/api/v{v}/calls.{{fmt}}", calls.list_versioned(v), JSON_ONLY),
            (f"/api/v{v}/calls/{{uuid}}.{{fmt}}", calls.show_versioned(v), JSON_ONLY),
        )
    ),
    *(
        route
        for prefix in ("", "/api/v1")
        for route in (
            (f"{prefix}/affiliates.{{fmt}}", reads.index(AFFILIATES), None),
            (f"{prefix}/affiliates/afid/{{key}}.{{fmt}}", reads.show(AFFILIATES, "afid"), None),
            (f"{prefix}/affiliates/{{key}}.{{fmt}}", reads.show(AFFILIATES), None),
        )
    ),
    ("/targets.{fmt}", reads.index(TARGETS), None),
    ("/targets/tid/{key}.{fmt}", reads.show(TARGETS, "tid"), None),
    ("/targets/{key}.{fmt}", reads.show(TARGETS), None),
    ("/campaigns.{fmt}", reads.index(CAMPAIGNS), None),
    ("/campaigns/cid/{key}.{fmt}", reads.show(CAMPAIGNS, "cid"), None),
    ("/campaigns/{key}.{fmt}", reads.show(CAMPAIGNS), None),
    ("/numbers.{fmt}", reads.index(NUMBERS), None),
    ("/numbers/{key}.{fmt}", reads.show(NUMBERS), None),
    ("/number_pools.{fmt}", reads.index(NUMBER_POOLS), None),
    ("/number_pools/{key}.{fmt}", reads.show(NUMBER_POOLS), None),
    ("/company.{fmt}", reads.active_company, None),
    ("/companies.{fmt}", reads.list_companies, None),
    ("/companies/{key}.{fmt}", reads.show_company, None),
    ("/contacts.{fmt}", reads.index(CONTACTS), None),
    ("/contacts/{key}.{fmt}", reads.show(CONTACTS), None),
    ("/contact_numbers/{number}/contact.{fmt}", reads.show_contact_by_number, None),
    ("/contact_numbers/{number}.{fmt}", reads.show_contact_number, None),
    ("/suppressed_numbers/check.{fmt}", reads.suppressed_numbers_check, None),
    ("/suppressed_numbers.{fmt}", reads.index(SUPPRESSED_NUMBERS), None),
    ("/suppressed_numbers/{key}.{fmt}", reads.show(SUPPRESSED_NUMBERS, "number"), None),
    ("/suppression_list/check.{fmt}", reads.suppression_list_check, None),
    ("/static_caller_numbers.{fmt}", reads.index(STATIC_CALLER_NUMBERS), None),
    ("/target_groups.{fmt}", reads.index(TARGET_GROUPS), None),
    ("/target_groups/{key}.{fmt}", reads.show(TARGET_GROUPS), None),
    ("/api/v1/reports.{fmt}", reports.report, JSON_ONLY),
]

_enc = msgspec.json.Encoder()


def _json(data: object, status: int = 200) -> Response:
    return Response(_enc.encode(data), status, media_type="application/json")


async def _requests(request: Request) -> Response:
    return _json(list(core_state(request).received))


async def _clear_requests(request: Request) -> Response:
    core_state(request).received.clear()
    return _json({"cleared": True})


async def _stats(request: Request) -> Response:
    return _json(core_state(request).stats())


async def _hold(request: Request) -> Response:
    core_state(request).hold()
    return _json(core_state(request).stats())


async def _release(request: Request) -> Response:
    core_state(request).release()
    return _json(core_state(request).stats())


async def _reset(request: Request) -> Response:
    core_state(request).reset()
    return _json(core_state(request).stats())


CONTROL: list[tuple[str, str, Callable[[Request], Awaitable[Response]]]] = [
    ("/_sandbox/core_api/requests", "GET", _requests),
    ("/_sandbox/core_api/requests", "DELETE", _clear_requests),
    ("/_sandbox/core_api/stats", "GET", _stats),
    ("/_sandbox/core_api/hold", "POST", _hold),
    ("/_sandbox/core_api/release", "POST", _release),
    ("/_sandbox/core_api/reset", "POST", _reset),
]


def routes() -> list[BaseRoute]:
    found: list[BaseRoute] = [Route(path, fn, methods=[method]) for path, method, fn in CONTROL]
    for path, handler, formats in READS:
        found.append(Route(path, endpoint(handler, formats or ("json", "xml")), methods=["GET"]))
    for path, method, handler in writes.WRITES:
        found.append(Route(path, endpoint(handler), methods=[method]))
    for path, method, list_handler in caller_lists.ROUTES:
        found.append(Route(path, caller_lists.endpoint(list_handler), methods=[method]))
    return found
