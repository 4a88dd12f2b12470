"""Caller lists on a target (2026-05 reference, "Caller Lists"), JSON only, at
``/api/v2/targets/{target_id}/caller_lists/...``.

Access is a postback key of type "Caller List Management": its UUID in the ``key`` query
parameter *and* its secret as ``Authorization: Bearer ...``. A missing or unknown key, or
a secret that is not that key's, is 401; a target outside the key's company is 404 (as
for any record the caller cannot reach).

Seeded: :data:`POSTBACK_KEYS` (documented in ``gateway/sandbox/api/__init__.py``);
company 1's first target has a ``suppressed`` list holding ``+15855752500`` and a
``book_of_business`` list, empty. Numbers may be E.164 or NANP (``5855752500`` is
stored as ``+15855752500``), as the reference allows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.sandbox.api.attrs import utcnow
from gateway.sandbox.api.context import core_state, phone
from gateway.sandbox.api.data import CoreData, Record, iso_ms
from gateway.sandbox.api.postback import POSTBACK_KEYS, PostbackKey
from gateway.sandbox.api.render import MESSAGES, error, render

_dec = msgspec.json.Decoder()


@dataclass
class ListCtx:
    request: Request
    data: CoreData
    lists: dict[tuple[int, str], Record]
    target_id: int

    def error(self, status: int, message: str | None = None) -> Response:
        return error("json", status, message or MESSAGES[status])

    def the_list(self) -> Record | None:
        return self.lists.get((self.target_id, str(self.request.path_params["name"])))

    async def body(self, wrapper: str) -> dict[str, Any] | Response:
        raw = await self.request.body()
        try:
            data = _dec.decode(raw) if raw.strip() else {}
        except msgspec.DecodeError:
            return self.error(400)
        inner = data.get(wrapper) if isinstance(data, dict) else None
        if not isinstance(inner, dict):
            return self.error(400, f"param is missing or the value is empty: {wrapper}")
        return inner


ListHandler = Callable[[ListCtx], Awaitable[Response]]


def _authorised(request: Request, data: CoreData) -> PostbackKey | None:
    key = POSTBACK_KEYS.get(request.query_params.get("key", ""))
    if key is None or "caller_list" not in key.kinds:
        return None
    if request.headers.get("authorization", "") != f"Bearer {key.secret}":
        return None
    return key


def endpoint(handler: ListHandler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        if request.path_params.get("fmt") != "json":
            return error("json", 406, MESSAGES[406])
        state = core_state(request)
        key = _authorised(request, state.data)
        if key is None:
            return error("json", 401, "Unauthorized -- the postback key or its secret is wrong")
        raw = str(request.path_params["target_id"])
        targets = state.data.by_company[key.company].targets
        target = next((t for t in targets if raw.isdigit() and t["id"] == int(raw)), None)
        if target is None:
            return error("json", 404, MESSAGES[404])
        return await handler(ListCtx(request, state.data, state.caller_lists, target["id"]))

    run.__name__ = handler.__name__
    return run


def _one(root: str, record: Record, status: int = 200) -> Response:
    return render("json", root, {root: record}, status=status)


def _number(raw: Any) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    number = phone(raw)
    digits = number[1:]
    return number if digits.isdigit() and 8 <= len(digits) <= 15 else None


async def show_list(ctx: ListCtx) -> Response:
    found = ctx.the_list()
    return ctx.error(404) if found is None else _one("caller_list", found["list"])


async def create_list(ctx: ListCtx) -> Response:
    attrs = await ctx.body("caller_list")
    if isinstance(attrs, Response):
        return attrs
    name = attrs.get("name")
    if not isinstance(name, str) or not name.strip():
        return ctx.error(422, "name can't be blank")
    if (ctx.target_id, name) in ctx.lists:
        return ctx.error(422, "name has already been taken")
    record = {"name": name, "caller_listable_type": "Target", "caller_listable_id": ctx.target_id}
    ctx.lists[(ctx.target_id, name)] = {"list": record, "numbers": {}}
    return _one("caller_list", record, 201)


async def delete_list(ctx: ListCtx) -> Response:
    found = ctx.the_list()
    if found is None:
        return ctx.error(404)
    del ctx.lists[(ctx.target_id, found["list"]["name"])]
    return Response(status_code=204)


async def add_number(ctx: ListCtx) -> Response:
    found = ctx.the_list()
    if found is None:
        return ctx.error(404)
    attrs = await ctx.body("caller_list_number")
    if isinstance(attrs, Response):
        return attrs
    number = _number(attrs.get("number"))
    if number is None:
        return ctx.error(422, "number is invalid")
    record = found["numbers"].setdefault(number, {"number": number, "created_at": iso_ms(utcnow())})
    return _one("caller_list_number", record, 201)


def _path_number(ctx: ListCtx) -> str | None:
    return _number(str(ctx.request.path_params["number"]))


async def show_number(ctx: ListCtx) -> Response:
    found = ctx.the_list()
    number = _path_number(ctx)
    if found is None or number is None or number not in found["numbers"]:
        return ctx.error(404)  # "this caller number is not on the caller lists"
    return _one("caller_list_number", found["numbers"][number])


async def delete_number(ctx: ListCtx) -> Response:
    found = ctx.the_list()
    number = _path_number(ctx)
    if found is None or number is None or number not in found["numbers"]:
        return ctx.error(404)
    del found["numbers"][number]
    return Response(status_code=204)


async def check_number(ctx: ListCtx) -> Response:
    found = ctx.the_list()
    if found is None:
        return ctx.error(404)
    attrs = await ctx.body("caller_list_check")
    if isinstance(attrs, Response):
        return attrs
    number = _number(attrs.get("number"))
    if number is None:
        return ctx.error(422, "number is invalid")
    status = "present" if number in found["numbers"] else "not-present"
    return _one("caller_list_check", {"status": status})


async def upload(ctx: ListCtx) -> Response:
    found = ctx.the_list()
    if found is None:
        return ctx.error(404)
    attrs = await ctx.body("caller_list_upload")
    if isinstance(attrs, Response):
        return attrs
    raw = attrs.get("numbers")
    action = attrs.get("action", "create")
    clear = attrs.get("clear_before_upload") in (True, "true")
    if not isinstance(raw, str) or action not in ("create", "delete"):
        return ctx.error(422, "numbers must be one number per line; action create or delete")
    errors: list[str] = []
    numbers = [n for n in (_number(line) for line in raw.splitlines() if line.strip())]
    errors = [f"line {i + 1}: invalid number" for i, n in enumerate(numbers) if n is None]
    if clear:
        found["numbers"].clear()
    now = iso_ms(utcnow())
    for number in numbers:
        if number is None:
            continue
        if action == "create":
            found["numbers"].setdefault(number, {"number": number, "created_at": now})
        else:
            found["numbers"].pop(number, None)
    record = {
        "status": "Processing",
        "created_at": now,
        "error_messages": errors,
        "clear_before_upload": clear,
        "action": action,
        "csv_file_url": None,
    }
    return _one("caller_list_upload", record, 201)


_BASE = "/api/v2/targets/{target_id}/caller_lists"
_LIST = _BASE + "/{name}"

ROUTES: list[tuple[str, str, ListHandler]] = [
    (_BASE + ".{fmt}", "POST", create_list),
    (_LIST + ".{fmt}", "GET", show_list),
    (_LIST + ".{fmt}", "DELETE", delete_list),
    (_LIST + "/caller_list_numbers.{fmt}", "POST", add_number),
    (_LIST + "/caller_list_numbers/{number}.{fmt}", "GET", show_number),
    (_LIST + "/caller_list_numbers/{number}.{fmt}", "DELETE", delete_number),
    (_LIST + "/caller_list_checks.{fmt}", "POST", check_number),
    (_LIST + "/caller_list_uploads.{fmt}", "POST", upload),
]
