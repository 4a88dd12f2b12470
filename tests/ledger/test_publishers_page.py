"""/admin/publishers in a real browser: headless Chromium loads the page of a real gateway
(PostgreSQL ledger, admin token given in the URL fragment as a person would paste it),
the page fetches the JSON with the token as Bearer and renders the funnel, the chart and
the confirmed-but-never-called count in red. The screenshot it takes is
docs/pages/img/publishers.png (shown on docs/pages/analytics.md).

A day of synthetic history is written into the same PostgreSQL through the store (as the
writer would) and reconciliation's sums through ``add_reconciled`` (as the pass does), so
the chart and the funnel's later stages have something to show.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import Secret
from gateway.ledger.events import Event, Materializer
from gateway.ledger.outcomes import Reservation
from gateway.ledger.postgres import PostgresLedgerStore
from gateway.ledger.rollups import HOUR_S, Reconciled, hour_of
from tests.conftest import RTB_KEY, MakeGateway
from tests.ledger.test_analytics import wait_analytics
from tests.observe.test_status_page import Rendered, _chromium

pytestmark = pytest.mark.slow

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "pages" / "img" / "publishers.png"
TOKEN = "t0ken-for-the-admin-routes"
PUBLISHERS = {"solar-leads": 6, "insure-now": 3, "home-pros": 2}  # bids an hour


def _history(now: float) -> tuple[list[Any], list[Reconciled], dict[str, int]]:
    """23 past hours: each publisher pings, bids, gets confirmed; some calls convert.
    Returns the rows, reconciliation's sums and the confirmations per publisher."""
    materializer = Materializer(b"k" * 32)
    rows: list[Any] = []
    earned: list[Reconciled] = []
    confirmed = dict.fromkeys(PUBLISHERS, 0)
    n = 0

    def add(at: float, outcome: str, **kw: Any) -> None:
        nonlocal n
        n += 1
        route = "/rtbs/{uuid}.json" if outcome == "confirmed" else "/rtbs.json"
        rows.append((at, materializer.row(Event(at, f"hist-{n}", route, 200, outcome, **kw))))

    for back in range(23, 0, -1):
        hour = hour_of(now) - back * HOUR_S
        for pub, base in PUBLISHERS.items():
            bids = base + back % 3
            uuids = []
            for i in range(bids * 2):
                reserved = i < bids
                reservation = None
                if reserved:
                    uuids.append(f"h-{back}-{pub}-{i}")
                    reservation = Reservation(
                        status="reserved", uuid=uuids[-1], retreaver_payout=4.0 + i % 3
                    )
                add(
                    hour + 60 + i,
                    "reserved" if reserved else "no_bid",
                    publisher_id=pub,
                    caller=f"+1855{n:07d}",
                    reservation=reservation,
                    upstream_s=0.02 + 0.01 * (i % 5),
                )
            calls = bids // 2
            for uuid in uuids[: calls + 1]:  # a confirmation names no publisher
                add(hour + 1800, "confirmed", reservation_uuid=uuid)
                confirmed[pub] += 1
            earned.append(
                Reconciled(float(hour), pub, None, calls, calls, 0, calls // 2, 5.0 * (calls // 2))
            )
    return rows, earned, confirmed


async def _browse(url: str, profile: Path, *extra: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--window-size=1440,900",
        "--virtual-time-budget=5000",
        *extra,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def test_publishers_page_in_chromium_shows_the_funnel(
    make_gateway: MakeGateway,
    sandbox_url: str,
    postgres_url: str,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    now = time.time()
    history, earned, confirmed = _history(now)
    store = PostgresLedgerStore(postgres_url, retention_days=90, timeout_s=10.0)
    try:
        await store.write(history)
        # This hour: a confirmed reservation of solar-leads was never called.
        await store.add_reconciled(
            [*earned, Reconciled(float(hour_of(now)), "solar-leads", None, 0, 0, 1, 0, 0.0)]
        )
    finally:
        await store.close()
    async with make_gateway(
        rtb_upstream_url=sandbox_url, ledger_url=Secret(postgres_url), admin_token=Secret(TOKEN)
    ) as gw:
        for n in range(4):  # live pings through the gateway count too
            resp = await client.post(
                f"{gw}/rtbs.json",
                json={
                    "key": RTB_KEY,
                    "publisher_id": "solar-leads",
                    "caller_number": f"+1855800000{n}",
                },
            )
            assert resp.headers["x-outcome"] == "reserved"
        await client.put(
            f"{gw}/rtbs/{resp.json()['uuid']}.json", json={"key": RTB_KEY, "status": "confirmed"}
        )
        pings = sum(1 for _, row in history if row.route == "/rtbs.json")
        body = await wait_analytics(client, gw, pings + 4)
        expected = {r["publisher_id"]: r for r in body["rows"]}
        url = f"{gw}/admin/publishers#token={TOKEN}"
        dom = await _browse(url, tmp_path / "p1", "--dump-dom")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await _browse(url, tmp_path / "p2", f"--screenshot={SCREENSHOT}")

    page = Rendered()
    page.feed(dom)
    assert page.body.get("data-loaded") == "yes", dom[:3000]
    assert TOKEN not in dom  # taken out of the address bar, never rendered
    rows = _table(dom)
    assert list(rows) == ["solar-leads", "insure-now", "home-pros"]  # by earnings
    solar = rows["solar-leads"]
    s = expected["solar-leads"]
    assert solar["cells"][:6] == [
        "solar-leads",
        f"{s['pings']:,}",
        f"{s['reserved']:,}",
        f"{s['confirmed']:,}",
        f"{s['calls']:,}",
        f"{s['converted']:,}",
    ]
    assert s["confirmed"] == confirmed["solar-leads"] + 1  # the history's and the live one
    assert solar["cells"][6] == f"${s['payout_earned']:,.0f}"
    assert solar["cells"][10] == "1"
    assert solar["missed_class"] == "bad"  # the confirmed-never-called count in red
    assert rows["insure-now"]["missed_class"] == ""
    assert "error" in page.alerts  # the banner counts the never-called confirmation
    assert "never called" in page.alerts["error"]
    assert "revenue-bids" in page.charts
    assert dom.count('data-series="revenue"') == 1
    assert dom.count('data-series="bids"') == 1
    png = SCREENSHOT.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000


def _table(dom: str) -> dict[str, dict[str, Any]]:
    """Rows of the funnel table by data-publisher: their cell texts and the alert cell's class."""
    from html.parser import HTMLParser

    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: dict[str, dict[str, Any]] = {}
            self._row: dict[str, Any] | None = None
            self._cell: list[str] | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = {k: v or "" for k, v in attrs}
            if tag == "tr" and "data-publisher" in a:
                self._row = self.rows[a["data-publisher"]] = {"cells": [], "missed_class": ""}
            elif tag == "td" and self._row is not None:
                self._cell = []
                if a.get("data-alert") == "not-called":
                    self._row["missed_class"] = a.get("class", "")

        def handle_endtag(self, tag: str) -> None:
            if tag == "td" and self._row is not None and self._cell is not None:
                self._row["cells"].append("".join(self._cell))
                self._cell = None
            elif tag == "tr":
                self._row = None

        def handle_data(self, data: str) -> None:
            if self._cell is not None:
                self._cell.append(data)

    parser = Rows()
    parser.feed(dom)
    return parser.rows
