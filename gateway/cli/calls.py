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
import os
import sys
from pathlib import Path
from typing import IO

import httpx2

from gateway.cli.export_fetch import Fetcher, Page, page_of, with_page
from gateway.cli.export_state import (
    ExportError,
    ExportOptions,
    ExportResult,
    ExportState,
    load_state,
    normalise_instant,
)
from gateway.cli.export_write import Progress, Writer
from gateway.coreapi.reports import parse_instant

MAX_CONCURRENCY = 32


async def run_export(
    opts: ExportOptions,
    *,
    client: httpx2.AsyncClient | None = None,
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

    state = load_state(opts)
    if state is not None and state.complete:
        return ExportResult(state.pages_written, state.records, state.offset)
    progress = Progress(progress_stream, opts.quiet)
    own_client = client is None
    client = client or httpx2.AsyncClient(timeout=opts.timeout_s)
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
    client: httpx2.AsyncClient,
    progress: Progress,
) -> ExportResult:
    fetcher = Fetcher(client, opts)
    writer = Writer(opts, state, out)
    if state.pages_written == 0:
        first = await fetcher.page(fetcher.first_query())
        last, nxt = first.links.get("last"), first.links.get("next")
        state.pages_total = (page_of(last) if last else None) or (None if nxt else 1)
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
    fetcher: Fetcher, writer: Writer, state: ExportState, progress: Progress
) -> None:
    """Without a ``last`` link: one page after another until there is no ``next``."""
    while state.next_query is not None:
        query = with_page(state.next_query, state.pages_written + 1)
        page = await fetcher.page(query)
        nxt = page.links.get("next")
        state.next_query = fetcher.template_from(nxt) if nxt else None
        writer.write_page(page)
        progress.update(state.pages_written, state.pages_total, state.records)


async def _fetch_range(
    fetcher: Fetcher,
    writer: Writer,
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
    ready: dict[int, Page] = {}
    turn = asyncio.Condition()
    pages = iter(range(state.pages_written + 1, total + 1))

    async def worker() -> None:
        for number in pages:
            async with turn:
                await turn.wait_for(lambda n=number: n <= state.pages_written + window)
            page = await fetcher.page(with_page(template, number))
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


def run(args: argparse.Namespace, env: dict[str, str] | None = None) -> int:
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
