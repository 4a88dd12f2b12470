"""What every Core API handler starts from: format, credentials, the company's data.

Order of checks, as a Rails app would run them: the route matched (else 404 before
anything else), then ``api_key`` (missing or unknown → 401) and ``company_id`` (one the
key cannot reach → 403; none given → the key's active company, as ``/company.json``
documents), then the extension is one the route offers (else 406).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway.sandbox.api.data import ApiKey, CompanyData, CoreData, Record
from gateway.sandbox.api.paging import (
    PER_PAGE,
    PageError,
    link_header,
    page_number,
    page_of,
    per_page_of,
    total_pages,
)
from gateway.sandbox.api.render import FORMATS, MESSAGES, error, render
from gateway.sandbox.api.state import CoreApiState

_dec = msgspec.json.Decoder()


@dataclass
class Ctx:
    request: Request
    fmt: str
    data: CoreData
    key: ApiKey
    company_id: int

    @property
    def company(self) -> CompanyData:
        return self.data.by_company[self.company_id]

    def param(self, name: str) -> str | None:
        value = self.request.query_params.get(name)
        return value if value not in (None, "") else None

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    def error(self, status: int, message: str | None = None) -> Response:
        return error(self.fmt, status, message or MESSAGES[status])

    def not_found(self) -> Response:
        return self.error(404)

    def one(self, root: str, record: Record, status: int = 200) -> Response:
        return render(self.fmt, root, {root: record}, status=status)

    def page(
        self, plural: str, singular: str, records: list[Record], *, sized: bool = False
    ) -> Response:
        """One page of an index, wrapped per item, with the ``Link`` header; ``sized``
        indexes (the call log) honour ``per_page`` too."""
        try:
            page = page_number(self.request)
        except PageError as exc:
            return self.error(400, str(exc))
        per_page = per_page_of(self.request) if sized else PER_PAGE
        pages = total_pages(len(records), per_page)
        body = [{singular: r} for r in page_of(records, page, per_page)]
        link = link_header(self.request, page, pages)
        return render(self.fmt, plural, body, headers={"Link": link} if link else None)

    async def body(self, wrapper: str, *, required: bool = True) -> dict[str, Any] | Response:
        """The ``{"wrapper": {...}}`` JSON body's inner object, or a 400."""
        raw = await self.request.body()
        if not raw.strip():
            return (
                self.error(400, f"param is missing or the value is empty: {wrapper}")
                if required
                else {}
            )
        try:
            data = _dec.decode(raw)
        except msgspec.DecodeError:
            return self.error(400)
        if not isinstance(data, dict):
            return self.error(400)
        inner = data.get(wrapper)
        if inner is None:
            if required:
                return self.error(400, f"param is missing or the value is empty: {wrapper}")
            return {}
        if not isinstance(inner, dict):
            return self.error(400, f"{wrapper} must be an object")
        return inner


Handler = Callable[[Ctx], Awaitable[Response]]


def core_state(request: Request) -> CoreApiState:
    return request.app.state.core_api


def authenticate(request: Request, data: CoreData, fmt: str) -> tuple[ApiKey, int] | Response:
    api_key = request.query_params.get("api_key")
    key = data.keys.get(api_key) if api_key else None
    if key is None:
        return error(fmt, 401, MESSAGES[401])
    raw = request.query_params.get("company_id")
    company_id = key.active if raw in (None, "") else int(raw) if raw.isdigit() else -1
    if company_id not in key.companies or company_id not in data.by_company:
        return error(fmt, 403, MESSAGES[403])
    return key, company_id


def endpoint(
    handler: Handler, formats: tuple[str, ...] = FORMATS
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        fmt = str(request.path_params.get("fmt", "json"))
        offered = fmt in formats
        data = core_state(request).data
        found = authenticate(request, data, fmt if offered else "json")
        if isinstance(found, Response):
            return found
        if not offered:  # Rails' respond_to runs after the before_action that authenticates
            return error("json", 406, MESSAGES[406])
        key, company_id = found
        return await handler(Ctx(request, fmt, data, key, company_id))

    run.__name__ = handler.__name__
    return run


def phone(raw: str) -> str:
    """A number from a path as stored: ``+`` kept, a bare NANP number given ``+1``."""
    raw = raw.strip()
    if raw.startswith("+"):
        return raw
    digits = "".join(ch for ch in raw if ch.isdigit())
    return f"+1{digits}" if len(digits) == 10 else f"+{digits}"
