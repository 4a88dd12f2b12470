"""``gateway calls export``: fetching pages of ``/calls.json``, retried politely.

Only path and query are taken from a ``Link``: requests go to the chosen base URL, so
the ``api_key`` never travels to a host named in a header. 429s wait out
``Retry-After`` (at most 60 s each); timeouts, connection errors and 5xx are retried
with backoff (5 attempts); 400/401/403/404 stop the export at once.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx2
import msgspec

from gateway.cli.export_state import ExportError, ExportOptions
from gateway.coreapi.client import retry_after_seconds

MAX_ATTEMPTS = 5
MAX_RETRY_AFTER_S = 60.0
BACKOFF_S = 0.5
_LINK = re.compile(r'<([^>]*)>\s*;[^,]*?rel="?([a-z]+)"?')


@dataclass
class Page:
    records: list[dict[str, Any]]
    links: dict[str, str] = field(default_factory=dict)


def parse_links(value: str | None) -> dict[str, str]:
    """``rel -> URL`` from a ``Link`` header."""
    if not value:
        return {}
    return {rel: url for url, rel in _LINK.findall(value)}


def with_page(query: str, page: int) -> str:
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "page"]
    return urlencode([*pairs, ("page", str(page))])


def page_of(url: str) -> int | None:
    for key, value in parse_qsl(urlsplit(url).query):
        if key == "page" and value.isdigit():
            return int(value)
    return None


class Fetcher:
    def __init__(self, client: httpx2.AsyncClient, opts: ExportOptions) -> None:
        self.client = client
        self.opts = opts
        origin = urlsplit(opts.base_url)
        self.origin = f"{origin.scheme}://{origin.netloc}{origin.path.rstrip('/')}"

    def first_query(self) -> str:
        return urlencode(
            [
                ("created_at_start", self.opts.since),
                ("created_at_end", self.opts.until),
                ("sort_by", "created_at"),
                ("order", "asc"),
                ("page", "1"),
            ]
        )

    @staticmethod
    def template_from(url: str) -> str:
        """A link's query without credentials: the template goes into the state file,
        which never holds the key, so credentials are added per request instead."""
        pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
        return urlencode([(k, v) for k, v in pairs if k not in ("api_key", "company_id")])

    def _credentials(self) -> str:
        creds = [("api_key", self.opts.api_key)]
        if self.opts.company_id:
            creds.append(("company_id", self.opts.company_id))
        return urlencode(creds)

    async def page(self, query: str) -> Page:
        url = f"{self.origin}{self.opts.path}?{self._credentials()}&{query}"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                resp = await self.client.get(url)
            except httpx2.TransportError as exc:
                if attempt == MAX_ATTEMPTS:
                    reason = type(exc).__name__
                    raise ExportError(f"the Core API could not be reached: {reason}") from None
                await asyncio.sleep(BACKOFF_S * 2 ** (attempt - 1))
                continue
            if resp.status_code == 200:
                return self._parse(resp)
            if resp.status_code == 429 and attempt < MAX_ATTEMPTS:
                wait = retry_after_seconds(resp.headers.get("retry-after"))
                await asyncio.sleep(min(MAX_RETRY_AFTER_S, 1.0 if wait is None else wait))
                continue
            if resp.status_code >= 500 and attempt < MAX_ATTEMPTS:
                await asyncio.sleep(BACKOFF_S * 2 ** (attempt - 1))
                continue
            raise ExportError(f"page {page_of(url)}: {_describe(resp)}")
        raise AssertionError("unreachable")

    @staticmethod
    def _parse(resp: httpx2.Response) -> Page:
        try:
            items = msgspec.json.decode(resp.content)
        except msgspec.DecodeError:
            raise ExportError("the Core API answered something that is not JSON") from None
        if not isinstance(items, list):
            raise ExportError("the Core API answered something that is not a list of calls")
        records = [i.get("call", i) if isinstance(i, dict) else i for i in items]
        return Page(records, parse_links(resp.headers.get("link")))


def _describe(resp: httpx2.Response) -> str:
    reason = ""
    try:
        body = msgspec.json.decode(resp.content)
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            reason = f": {body['error']}"
    except msgspec.DecodeError:
        pass
    return f"HTTP {resp.status_code}{reason}"
