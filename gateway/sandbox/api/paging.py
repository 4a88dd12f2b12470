"""25 per page and the ``Link`` header, as Retreaver's index responses carry them.

The call log also honours ``per_page`` (:func:`per_page_of`), as Retreaver's own export
script uses it (``per_page=100`` on ``/api/v1/calls.json``). The reference states the
default (25) and no maximum; the sandbox honours 1 to :data:`MAX_CALLS_PER_PAGE` (100, the
largest page the reference asks for) and answers that many for more, so a script tried
here never relies on a page size Retreaver has not shown it serves. A ``per_page`` that
is not a positive number gets the default, as the api-pagination gem does.

The header follows the reference's example (and the api-pagination gem behind it):
``first`` and ``prev`` unless on page 1, ``last`` and ``next`` unless on the last page, in
that order; no header at all when everything fits on one page. Each URL is absolute,
built from the request's own scheme and ``Host``, and keeps the request's query string
as sent (``api_key``, ``company_id``, filters, their order and encoding) with only
``page`` set, appended when the request had none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import unquote_plus

from starlette.requests import Request

PER_PAGE = 25
MAX_CALLS_PER_PAGE = 100

T = TypeVar("T")


class PageError(ValueError):
    """``page`` is not a positive integer."""


def page_number(request: Request, name: str = "page") -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise PageError(f"{name} must be a positive integer")
    return int(raw)


def per_page_of(request: Request, maximum: int = MAX_CALLS_PER_PAGE) -> int:
    """``per_page`` within 1..``maximum``; the default when absent or not a positive number."""
    raw = (request.query_params.get("per_page") or "").strip()
    if not raw.isdigit() or int(raw) < 1:
        return PER_PAGE
    return min(int(raw), maximum)


def total_pages(count: int, per_page: int = PER_PAGE) -> int:
    return max(1, -(-count // per_page))


def page_of(items: Sequence[T], page: int, per_page: int = PER_PAGE) -> list[T]:
    start = (page - 1) * per_page
    return list(items[start : start + per_page])


def _with_page(query: str, page: int) -> str:
    parts = [p for p in query.split("&") if p]
    out: list[str] = []
    placed = False
    for part in parts:
        if unquote_plus(part.split("=", 1)[0]) == "page":
            if not placed:
                out.append(f"page={page}")
                placed = True
            continue
        out.append(part)
    if not placed:
        out.append(f"page={page}")
    return "&".join(out)


def link_header(request: Request, page: int, pages: int) -> str | None:
    rels: list[tuple[str, int]] = []
    if page > 1:
        rels += [("first", 1), ("prev", page - 1)]
    if page < pages:
        rels += [("last", pages), ("next", page + 1)]
    if not rels:
        return None
    scheme = request.url.scheme
    host = request.headers.get("host") or request.url.netloc
    base = f"{scheme}://{host}{request.url.path}"
    query = request.scope.get("query_string", b"").decode("latin-1")
    return ", ".join(f'<{base}?{_with_page(query, n)}>; rel="{rel}"' for rel, n in rels)
