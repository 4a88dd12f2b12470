"""Reading the company's calls from ``/api/v2/calls.json`` for reconciliation.

Through the gateway's one Core API client (coreapi/client.py), so a pass obeys what
every lookup obeys: the concurrency cap, 429 with ``Retry-After`` waited out within
the retry budget, and the per-credential quiet after a 429. The cache is skipped on
purpose: a call log read from a cache could hide the calls that just arrived.

Pages are asked oldest first (``sort_by=created_at&order=asc``) over a fixed window
``[start, end]``, so calls arriving while the pass pages land after ``end`` and cannot
shift the pages. The next page is asked while the answer's ``Link`` header names a
``next`` one; its URL is not followed (it is the upstream's text), only its existence.
At most ``max_pages`` pages are read per pass; the rest waits for the next pass.

A caller number is digested (the ledger's HMAC) as soon as a call is decoded, and the
number itself is dropped with the decoded page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

import msgspec

from gateway.coreapi.client import CoreApiClient, Upstream
from gateway.ledger.matching import Call

PATH = "/api/v2/calls.json"
PER_PAGE = 100


class CallsUnavailable(Exception):
    """A page could not be read (upstream down, throttled past the budget, bad answer)."""


class _Call(msgspec.Struct):
    uuid: str
    created_at: str
    caller: str | None = None
    number: str | dict[str, object] | None = None
    converted: bool | None = None
    payout: float | str | None = None


class _Wrapped(msgspec.Struct):
    call: _Call


_pages = msgspec.json.Decoder(list[_Wrapped])


class CallsRead(msgspec.Struct):
    calls: list[Call]
    pages: int
    # True when max_pages stopped the read before the window's end.
    truncated: bool
    # created_at of the last call read (the window's end when everything was read).
    reached: float


def iso(epoch_s: float) -> str:
    moment = datetime.fromtimestamp(epoch_s, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def read_calls(
    client: CoreApiClient,
    *,
    api_key: str,
    company_id: str | None,
    start: float,
    end: float,
    digest: Callable[[str], str],
    max_pages: int,
    per_page: int = PER_PAGE,
) -> CallsRead:
    """The calls created in ``[start, end]``, oldest first; CallsUnavailable if a page fails."""
    calls: list[Call] = []
    pages = 0
    reached = start
    while True:
        params = [("api_key", api_key)]
        if company_id:
            params.append(("company_id", company_id))
        params += [
            ("created_at_start", iso(start)),
            ("created_at_end", iso(end)),
            ("sort_by", "created_at"),
            ("order", "asc"),
            ("per_page", str(per_page)),
            ("page", str(pages + 1)),
        ]
        try:
            answer = await client.get(Upstream.V2, PATH, urlencode(params).encode("ascii"))
        except Exception as exc:  # GatewayError (502/504) or anything the client raised
            raise CallsUnavailable(type(exc).__name__) from None
        if answer.status != 200:
            raise CallsUnavailable(f"status {answer.status}")
        try:
            records = _pages.decode(answer.body)
        except msgspec.DecodeError:
            raise CallsUnavailable("not a page of calls") from None
        pages += 1
        for wrapped in records:
            call = _call(wrapped.call, digest)
            if call is not None:
                calls.append(call)
                reached = max(reached, call.created_at.timestamp())
        more = any(name == "Link" and 'rel="next"' in value for name, value in answer.headers)
        if not more or not records:
            return CallsRead(calls, pages, False, end)
        if pages >= max_pages:
            return CallsRead(calls, pages, True, reached)


def _call(raw: _Call, digest: Callable[[str], str]) -> Call | None:
    """A matcher's Call, or None for one that can match nothing (no caller, bad time)."""
    number = raw.number.get("number") if isinstance(raw.number, dict) else raw.number
    if not raw.caller or not isinstance(number, str):
        return None
    try:
        created = datetime.fromisoformat(raw.created_at)
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    payout: float | None
    try:
        payout = None if raw.payout is None else float(raw.payout)
    except ValueError:
        payout = None
    if payout is not None and payout != payout:
        payout = None
    return Call(raw.uuid, digest(raw.caller), number, created, bool(raw.converted), payout)
