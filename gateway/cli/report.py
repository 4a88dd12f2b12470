"""``gateway report``: publisher analytics from a running gateway, for people without a browser.

It asks the gateway's admin API (``/admin/publishers.json``, or ``.csv`` with
``--format csv``) and prints a table or the CSV as the gateway wrote it. The token comes
from ``--token`` or, better (a flag shows in ``ps``), ``GATEWAY_ADMIN_TOKEN``; without one
the gateway answers only loopback clients. The token is sent as ``Authorization: Bearer``
and never printed. ``--from``/``--to`` are passed as given: the gateway validates them
and a bad value comes back as its message naming the parameter (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import IO, Any

import httpx2

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_S = 30.0

# (header, how to show a row's value) of the table, after period/publisher/sub-ID.
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("pings", "pings"),
    ("bids", "reserved"),
    ("bid rate", "bid_rate"),
    ("confirmed", "confirmed"),
    ("called", "calls"),
    ("never called", "confirmed_not_called"),
    ("converted", "converted"),
    ("earned", "payout_earned"),
    ("per ping", "earned_per_ping"),
    ("bid ms p50/p95/p99", "time_to_bid_ms"),
)


class ReportError(Exception):
    """Why the report could not be made (printed; exit 1)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="since", help="RFC 3339 start (default: 24 hours ago)")
    parser.add_argument("--to", dest="until", help="RFC 3339 end, exclusive (default: now)")
    parser.add_argument("--by", choices=("publisher", "sub_id"), default="publisher")
    parser.add_argument("--granularity", choices=("total", "day", "hour"), default="total")
    parser.add_argument("--format", choices=("table", "csv"), default="table")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the gateway (default {DEFAULT_URL})")
    parser.add_argument(
        "--token", help="admin token (default: $GATEWAY_ADMIN_TOKEN; prefer the variable)"
    )
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds (default 30)")


async def fetch(
    url: str,
    params: dict[str, str],
    fmt: str,
    token: str | None,
    timeout_s: float,
    client: httpx2.AsyncClient | None = None,
) -> httpx2.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    suffix = ".csv" if fmt == "csv" else ".json"
    target = f"{url.rstrip('/')}/admin/publishers{suffix}"
    own = client is None
    client = client or httpx2.AsyncClient(timeout=timeout_s)
    try:
        resp = await client.get(target, params=params, headers=headers, timeout=timeout_s)
    except httpx2.TimeoutException:
        raise ReportError(f"{url} did not answer within {timeout_s:g} s") from None
    except httpx2.TransportError as exc:
        raise ReportError(f"cannot reach {url} ({type(exc).__name__})") from None
    finally:
        if own:
            await client.aclose()
    if resp.status_code == 401:
        raise ReportError("the gateway refused the admin token: set GATEWAY_ADMIN_TOKEN")
    if resp.status_code == 403:
        raise ReportError("the gateway answers admin routes on loopback only: set a token")
    if resp.status_code != 200:
        raise ReportError(_describe(resp))
    return resp


def _describe(resp: httpx2.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"the gateway answered {resp.status_code}"
    fields = body.get("fields") if isinstance(body, dict) else None
    if isinstance(fields, dict) and fields:
        problems = "; ".join(f"{name} {why}" for name, why in fields.items())
        return f"the gateway answered {resp.status_code}: {problems}"
    message = body.get("message") if isinstance(body, dict) else None
    return f"the gateway answered {resp.status_code}: {message or body}"


def _show(value: Any, key: str) -> str:
    if value is None:
        return "-"
    if key == "time_to_bid_ms":
        return "/".join("-" if value[q] is None else f"{value[q]:g}" for q in ("p50", "p95", "p99"))
    if key == "bid_rate":
        return f"{value * 100:.1f}%"
    if key in ("payout_earned", "payout_offered"):
        return f"{value:,.2f}"
    if key == "earned_per_ping":
        return f"{value:.4f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(body: dict[str, Any]) -> str:
    """The rows as an aligned text table (text left, numbers right)."""
    rows = body["rows"]
    lead: list[tuple[str, str]] = []
    if body["granularity"] != "total":
        lead.append(("period", "period"))
    lead.append(("publisher", "publisher_id"))
    if body["by"] == "sub_id":
        lead.append(("sub-ID", "sub_id"))
    columns = [*lead, *_COLUMNS]
    cells = [[_show(row.get(key), key) for _, key in columns] for row in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, (h, _) in enumerate(columns)]
    text_columns = len(lead)

    def line(values: list[str]) -> str:
        return "  ".join(
            v.ljust(w) if i < text_columns else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    out = [line([h for h, _ in columns])]
    out += [line(c) for c in cells]
    out.append(f"{len(rows)} rows, {body['from']} to {body['to']}")
    return "\n".join(out) + "\n"


def run(
    args: argparse.Namespace,
    env: dict[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    env = dict(os.environ) if env is None else env
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    token = args.token or env.get("GATEWAY_ADMIN_TOKEN") or None
    params = {"by": args.by, "granularity": args.granularity}
    if args.since:
        params["from"] = args.since
    if args.until:
        params["to"] = args.until
    try:
        resp = asyncio.run(fetch(args.url, params, args.format, token, args.timeout))
    except ReportError as exc:
        print(f"report failed: {exc}", file=stderr)
        return 1
    if args.format == "csv":
        stdout.write(resp.text)
        truncated = resp.headers.get("x-truncated") == "true"
    else:
        body = resp.json()
        stdout.write(table(body))
        truncated = body["truncated"]
    if truncated:
        print("report: more rows than the gateway answers at once: narrow --from/--to", file=stderr)
    return 0
