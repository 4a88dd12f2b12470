"""``gateway calls export``: every call in a date range, as NDJSON or CSV.

The reference tells users to page through ``/calls.json`` with ``created_at_start``,
``created_at_end``, ``sort_by=created_at&order=asc`` and ``page``, reading the ``Link``
header. This does exactly that, through the gateway (default) or straight to the Core API
(``--direct``):

- page 1 is fetched first; its ``rel="last"`` link says how many pages there are, and
  the remaining pages are fetched ``--concurrency`` at a time from the ``rel="next"``
  link's own query with only ``page`` changed (without a ``last`` link, ``next`` is
  followed one page at a time). Only path and query are taken from a link: requests go
  to the chosen base URL, so the ``api_key`` never travels to a host named in a header;
- pages are written in order (a page that finishes early waits in memory, at most a few
  windows ahead), so the output is sorted by ``created_at`` like the API's answer;
- after each page the output is flushed to disk and a state file (``FILE.state.json``)
  records the pages and bytes written; ``--resume`` cuts the output back to that size and
  carries on from the next page. The state file holds a digest of the key, never the key;
- 429s wait out ``Retry-After`` (at most 60 s each); timeouts, connection errors and 5xx
  are retried with backoff (5 attempts); 400/401/403/404 stop the export at once;
- a progress bar goes to stderr (one line per 10 % when stderr is not a terminal).

Records are the inner ``call`` objects. CSV columns are those of the first call (nested
values as JSON); NDJSON keeps every field. The range is the Core API's: both ends
inclusive. Use a window in the past: calls created inside it while the export runs would
shift the pages under it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import msgspec

from gateway.core_api.reports import parse_instant
from gateway.upstream.core_api import retry_after_seconds

STATE_VERSION = 1
MAX_ATTEMPTS = 5
MAX_RETRY_AFTER_S = 60.0
BACKOFF_S = 0.5
MAX_CONCURRENCY = 32
_LINK = re.compile(r'<([^>]*)>\s*;[^,]*?rel="?([a-z]+)"?')

_json = msgspec.json.Encoder()


class ExportError(Exception):
    """The export stopped; the message says why (never with the key)."""


@dataclass
class ExportOptions:
    since: str
    until: str
    api_key: str
    base_url: str
    company_id: str | None = None
    fmt: str = "ndjson"
    output: Path | None = None
    v2: bool = False
    concurrency: int = 4
    resume: bool = False
    state_path: Path | None = None
    quiet: bool = False
    timeout_s: float = 30.0

    @property
    def path(self) -> str:
        return "/api/v2/calls.json" if self.v2 else "/calls.json"

    def identity(self) -> dict[str, Any]:
        """What a state file must match to be resumed."""
        digest = hashlib.sha256(self.api_key.encode()).hexdigest()[:16]
        return {
            "base_url": self.base_url,
            "path": self.path,
            "since": self.since,
            "until": self.until,
            "company_id": self.company_id,
            "format": self.fmt,
            "key_sha256_16": digest,
        }


@dataclass
class ExportState:
    identity: dict[str, Any]
    pages_total: int | None = None
    pages_written: int = 0
    records: int = 0
    offset: int = 0
    columns: list[str] | None = None
    next_query: str | None = None  # the query of a rel="next" link: our page template
    complete: bool = False
    version: int = STATE_VERSION


@dataclass
class ExportResult:
    pages: int
    records: int
    output_bytes: int


@dataclass
class _Page:
    records: list[dict[str, Any]]
    links: dict[str, str] = field(default_factory=dict)


def normalise_instant(name: str, value: str) -> str:
    parsed = parse_instant(value)
    if parsed is None:
        raise ExportError(f"--{name}: not a date (YYYY-MM-DD) or RFC 3339 date-time: {value!r}")
    return parsed.isoformat()


def parse_links(value: str | None) -> dict[str, str]:
    """``rel -> URL`` from a ``Link`` header."""
    if not value:
        return {}
    return {rel: url for url, rel in _LINK.findall(value)}


def _with_page(query: str, page: int) -> str:
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "page"]
    return urlencode([*pairs, ("page", str(page))])


def _page_of(url: str) -> int | None:
    for key, value in parse_qsl(urlsplit(url).query):
        if key == "page" and value.isdigit():
            return int(value)
    return None


class Progress:
    """A bar on a terminal, a line per 10 % elsewhere, nothing when quiet."""

    def __init__(self, stream: IO[str] | None, quiet: bool) -> None:
        self.stream = None if quiet else stream
        self.tty = bool(self.stream is not None and self.stream.isatty())
        self.started = time.monotonic()
        self._last_decile = -1

    def update(self, pages: int, total: int | None, records: int) -> None:
        if self.stream is None:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        if total:
            share = min(pages / total, 1.0)
            width = 30
            filled = int(share * width)
            bar = "#" * filled + "-" * (width - filled)
            line = f"calls export [{bar}] {pages}/{total} pages, {records} calls"
            decile = int(share * 10)
        else:
            line = f"calls export {pages} pages, {records} calls"
            decile = pages
        line += f", {pages / elapsed:.1f} pages/s"
        if self.tty:
            self.stream.write("\r" + line)
            self.stream.flush()
        elif decile != self._last_decile:
            self._last_decile = decile
            self.stream.write(line + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()


class _Writer:
    """Appends pages to the output in order and keeps the state file in step with it."""

    def __init__(self, opts: ExportOptions, state: ExportState, out: IO[bytes]) -> None:
        self.opts = opts
        self.state = state
        self.out = out

    def write_page(self, page: _Page) -> None:
        data = self._encode(page.records)
        self.out.write(data)
        self.out.flush()
        if self.opts.state_path is not None:
            os.fsync(self.out.fileno())
        self.state.pages_written += 1
        self.state.records += len(page.records)
        self.state.offset += len(data)
        self.save()

    def _encode(self, records: list[dict[str, Any]]) -> bytes:
        if self.opts.fmt == "ndjson":
            return b"".join(_json.encode(r) + b"\n" for r in records)
        buffer = io.StringIO()
        if self.state.columns is None:
            if not records:
                return b""
            self.state.columns = list(records[0])
            csv.writer(buffer, lineterminator="\n").writerow(self.state.columns)
        writer = csv.DictWriter(
            buffer, self.state.columns, extrasaction="ignore", lineterminator="\n"
        )
        for record in records:
            writer.writerow({k: _cell(v) for k, v in record.items()})
        return buffer.getvalue().encode()

    def save(self) -> None:
        path = self.opts.state_path
        if path is None:
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(self.state)))
        os.replace(tmp, path)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return _json.encode(value).decode()
    return value


class _Fetcher:
    def __init__(self, client: httpx.AsyncClient, opts: ExportOptions) -> None:
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

    async def page(self, query: str) -> _Page:
        url = f"{self.origin}{self.opts.path}?{self._credentials()}&{query}"
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                resp = await self.client.get(url)
            except httpx.TransportError as exc:
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
            raise ExportError(f"page {_page_of(url)}: {_describe(resp)}")
        raise AssertionError("unreachable")

    @staticmethod
    def _parse(resp: httpx.Response) -> _Page:
        try:
            items = msgspec.json.decode(resp.content)
        except msgspec.DecodeError:
            raise ExportError("the Core API answered something that is not JSON") from None
        if not isinstance(items, list):
            raise ExportError("the Core API answered something that is not a list of calls")
        records = [i.get("call", i) if isinstance(i, dict) else i for i in items]
        return _Page(records, parse_links(resp.headers.get("link")))


def _describe(resp: httpx.Response) -> str:
    reason = ""
    try:
        body = msgspec.json.decode(resp.content)
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            reason = f": {body['error']}"
    except msgspec.DecodeError:
        pass
    return f"HTTP {resp.status_code}{reason}"


def _load_state(opts: ExportOptions) -> ExportState | None:
    path = opts.state_path
    if not opts.resume or path is None or not path.exists():
        return None
    try:
        state = msgspec.json.decode(path.read_bytes(), type=ExportState)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise ExportError(f"{path}: not a state file this version can resume") from None
    if state.identity != opts.identity():
        raise ExportError(f"{path}: it belongs to a different export (range, source or key)")
    return state


async def run_export(
    opts: ExportOptions,
    *,
    client: httpx.AsyncClient | None = None,
    stdout: IO[bytes] | None = None,
    progress_stream: IO[str] | None = None,
) -> ExportResult:
    """Run one export (or resume one); raise ExportError with a reason on failure."""
    if opts.fmt not in ("ndjson", "csv"):
        raise ExportError("--format must be ndjson or csv")
    if not 1 <= opts.concurrency <= MAX_CONCURRENCY:
        raise ExportError(f"--concurrency must be from 1 to {MAX_CONCURRENCY}")
    if opts.resume and opts.output is None:
        raise ExportError("--resume needs --output (standard output cannot be resumed)")
    if opts.output is not None and opts.state_path is None:
        opts.state_path = opts.output.with_name(opts.output.name + ".state.json")

    state = _load_state(opts)
    if state is not None and state.complete:
        return ExportResult(state.pages_written, state.records, state.offset)
    progress = Progress(progress_stream, opts.quiet)
    own_client = client is None
    client = client or httpx.AsyncClient(timeout=opts.timeout_s)
    try:
        if opts.output is None:
            out = stdout or sys.stdout.buffer
            return await _export(opts, ExportState(opts.identity()), out, client, progress)
        if state is None:
            state = ExportState(opts.identity())
            mode = "wb"
        else:
            mode = "r+b"
        # Blocking file I/O is fine here: this loop serves only the export's own requests.
        with open(opts.output, mode) as out:  # noqa: ASYNC230
            out.truncate(state.offset)
            out.seek(state.offset)
            return await _export(opts, state, out, client, progress)
    finally:
        progress.finish()
        if own_client:
            await client.aclose()


async def _export(
    opts: ExportOptions,
    state: ExportState,
    out: IO[bytes],
    client: httpx.AsyncClient,
    progress: Progress,
) -> ExportResult:
    fetcher = _Fetcher(client, opts)
    writer = _Writer(opts, state, out)
    if state.pages_written == 0:
        first = await fetcher.page(fetcher.first_query())
        last, nxt = first.links.get("last"), first.links.get("next")
        state.pages_total = (_page_of(last) if last else None) or (None if nxt else 1)
        state.next_query = fetcher.template_from(nxt) if nxt else None
        writer.write_page(first)
        progress.update(state.pages_written, state.pages_total, state.records)

    if state.pages_total is not None:
        await _fetch_range(fetcher, writer, state, progress, opts.concurrency)
    else:
        await _follow_next(fetcher, writer, state, progress)
    state.complete = True
    writer.save()
    return ExportResult(state.pages_written, state.records, state.offset)


async def _follow_next(
    fetcher: _Fetcher, writer: _Writer, state: ExportState, progress: Progress
) -> None:
    """Without a ``last`` link: one page after another until there is no ``next``."""
    while state.next_query is not None:
        query = _with_page(state.next_query, state.pages_written + 1)
        page = await fetcher.page(query)
        nxt = page.links.get("next")
        state.next_query = fetcher.template_from(nxt) if nxt else None
        writer.write_page(page)
        progress.update(state.pages_written, state.pages_total, state.records)


async def _fetch_range(
    fetcher: _Fetcher,
    writer: _Writer,
    state: ExportState,
    progress: Progress,
    concurrency: int,
) -> None:
    """Pages ``pages_written+1 .. pages_total``, ``concurrency`` at a time, written in order."""
    total = state.pages_total or 0
    template = state.next_query
    if template is None or state.pages_written >= total:
        return
    window = 4 * concurrency  # how far ahead of the last written page a fetch may run
    ready: dict[int, _Page] = {}
    turn = asyncio.Condition()
    pages = iter(range(state.pages_written + 1, total + 1))

    async def worker() -> None:
        for number in pages:
            async with turn:
                await turn.wait_for(lambda n=number: n <= state.pages_written + window)
            page = await fetcher.page(_with_page(template, number))
            async with turn:
                ready[number] = page
                while state.pages_written + 1 in ready:
                    writer.write_page(ready.pop(state.pages_written + 1))
                    progress.update(state.pages_written, total, state.records)
                turn.notify_all()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, total - state.pages_written)):
                group.create_task(worker())
    except ExceptionGroup as group_error:
        first = group_error.exceptions[0]
        if isinstance(first, ExportError):
            raise first from None
        raise


# -- the command line -------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", required=True, help="created_at_start: YYYY-MM-DD or RFC 3339")
    parser.add_argument("--until", required=True, help="created_at_end: YYYY-MM-DD or RFC 3339")
    parser.add_argument("--format", choices=("ndjson", "csv"), default="ndjson")
    parser.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--gateway",
        default="http://127.0.0.1:8080",
        help="the gateway to page through (default http://127.0.0.1:8080)",
    )
    source.add_argument(
        "--direct",
        action="store_true",
        help="page through the Core API itself (GATEWAY_CORE_API_URL / _V2_URL)",
    )
    parser.add_argument("--v2", action="store_true", help="use /api/v2/calls.json")
    parser.add_argument(
        "--api-key", help="Core API key (default: $RETREAVER_API_KEY; prefer the variable)"
    )
    parser.add_argument("--company-id", help="company_id (default: $RETREAVER_COMPANY_ID)")
    parser.add_argument("--concurrency", type=int, default=4, help="pages in flight (default 4)")
    parser.add_argument("--resume", action="store_true", help="carry on from the state file")
    parser.add_argument("--state", type=Path, help="state file (default: OUTPUT.state.json)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def main(args: argparse.Namespace, env: dict[str, str] | None = None) -> int:
    env = dict(os.environ) if env is None else env
    api_key = args.api_key or env.get("RETREAVER_API_KEY")
    if not api_key:
        print("calls export: set RETREAVER_API_KEY (or pass --api-key)", file=sys.stderr)
        return 2
    try:
        base_url = _base_url(args, env)
        opts = ExportOptions(
            since=normalise_instant("since", args.since),
            until=normalise_instant("until", args.until),
            api_key=api_key,
            company_id=args.company_id or env.get("RETREAVER_COMPANY_ID") or None,
            base_url=base_url,
            fmt=args.format,
            output=args.output,
            v2=args.v2,
            concurrency=args.concurrency,
            resume=args.resume,
            state_path=args.state,
            quiet=args.quiet,
        )
        since, until = parse_instant(opts.since), parse_instant(opts.until)
        if since is None or until is None or since >= until:
            raise ExportError("--since must be before --until")
        result = asyncio.run(run_export(opts, progress_stream=sys.stderr))
    except ExportError as exc:
        hint = " (run again with --resume to carry on)" if args.output else ""
        print(f"calls export failed: {exc}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ncalls export interrupted; run again with --resume", file=sys.stderr)
        return 130
    if not args.quiet:
        print(
            f"calls export: {result.records} calls in {result.pages} pages"
            + (f" -> {args.output}" if args.output else ""),
            file=sys.stderr,
        )
    return 0


def _base_url(args: argparse.Namespace, env: dict[str, str]) -> str:
    if not args.direct:
        return str(args.gateway)
    from gateway.config import ConfigError, Settings

    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        raise ExportError(f"{exc.variable}: {exc.message}") from None
    return settings.core_api_v2_url if args.v2 else settings.core_api_url
