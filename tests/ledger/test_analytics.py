"""Publisher analytics from outside: pings through a real gateway, rows from its admin API,
against both ledger stores (in process and a real PostgreSQL), with exact counts."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx
import pytest

from gateway.config import Secret
from tests.conftest import RTB_KEY, MakeGateway

TOKEN = "t0ken-for-the-admin-routes"
AUTH = {"authorization": f"Bearer {TOKEN}"}


async def wait_analytics(
    client: httpx.AsyncClient, gw: str, pings: int, timeout_s: float = 10.0, **params: Any
) -> dict[str, Any]:
    """Poll until the rows hold ``pings`` pings: the contract's "counts within 10 s"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        resp = await client.get(f"{gw}/admin/publishers.json", params=params, headers=AUTH)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        if sum(r["pings"] for r in body["rows"]) >= pings or loop.time() > deadline:
            return body
        await asyncio.sleep(0.05)


async def _traffic(client: httpx.AsyncClient, gw: str) -> None:
    """pub-1/s-9: 3 bids, a repeat, a no-bid, an invalid, an upstream error, 2 confirmed;
    pub-1 without sub-ID: 1 bid; pub-2/s-1: 1 bid; a ping naming nobody: invalid."""
    base = {"key": RTB_KEY, "publisher_id": "pub-1", "sub_id": "s-9"}
    uuids = []
    for n in range(3):
        resp = await client.post(
            f"{gw}/rtbs.json", json={**base, "caller_number": f"+1855848551{n}"}
        )
        assert resp.headers["x-outcome"] == "reserved"
        uuids.append(resp.json()["uuid"])
    repeat = await client.post(f"{gw}/rtbs.json", json={**base, "caller_number": "+18558485510"})
    assert repeat.headers["x-outcome"] == "repeat"
    no_bid = await client.post(
        f"{gw}/rtbs.json",
        json={**base, "caller_number": "+18558485520", "sandbox_outcome": "no-target"},
    )
    assert no_bid.headers["x-outcome"] == "no_bid"
    invalid = await client.post(f"{gw}/rtbs.json", json={**base, "caller_number": "not-a-number"})
    assert invalid.headers["x-outcome"] == "invalid"
    refused = await client.post(
        f"{gw}/rtbs.json",
        json={**base, "caller_number": "+18558485521", "sandbox_status": "500"},
    )
    assert refused.headers["x-outcome"] == "upstream_refused"
    for uuid in uuids[:2]:  # a confirmation names no publisher: it counts for the bid's
        confirm = await client.put(
            f"{gw}/rtbs/{uuid}.json", json={"key": RTB_KEY, "status": "confirmed"}
        )
        assert confirm.headers["x-outcome"] == "confirmed"
    other = await client.post(
        f"{gw}/rtbs.json",
        json={"key": RTB_KEY, "publisher_id": "pub-1", "caller_number": "+18558485530"},
    )
    assert other.headers["x-outcome"] == "reserved"
    pub2 = await client.post(
        f"{gw}/rtbs.json",
        json={
            "key": RTB_KEY,
            "publisher_id": "pub-2",
            "sub_id": "s-1",
            "caller_number": "+18558485531",
        },
    )
    assert pub2.headers["x-outcome"] == "reserved"
    nobody = await client.post(f"{gw}/rtbs.json", json={"key": RTB_KEY})
    assert nobody.headers["x-outcome"] == "invalid"


EXPECTED_PUB1 = {
    "publisher_id": "pub-1",
    "pings": 8,
    "invalid": 1,
    "reserved": 4,
    "no_bid": 1,
    "repeat": 1,
    "errors": 1,
    "bid_rate": 0.8,
    "payout_offered": 20.0,
    "avg_payout": 5.0,
    "confirmed": 2,
    "calls": 0,
    "called_in_time": 0,
    "confirmed_not_called": 0,
    "converted": 0,
    "payout_earned": 0.0,
    "earned_per_ping": 0.0,
}


def _settings(sandbox_url: str, store: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    settings: dict[str, Any] = dict(rtb_upstream_url=sandbox_url, admin_token=Secret(TOKEN))
    if store == "postgres":
        settings["ledger_url"] = Secret(request.getfixturevalue("postgres_url"))
    return settings


@pytest.mark.parametrize("store", ["memory", "postgres"])
async def test_rows_count_every_outcome_exactly(
    store: str,
    request: pytest.FixtureRequest,
    make_gateway: MakeGateway,
    sandbox_url: str,
    client: httpx.AsyncClient,
) -> None:
    async with make_gateway(**_settings(sandbox_url, store, request)) as gw:
        await _traffic(client, gw)
        total = await wait_analytics(client, gw, 10)
        by_sub = (await client.get(f"{gw}/admin/publishers.json?by=sub_id", headers=AUTH)).json()
        hourly = (
            await client.get(f"{gw}/admin/publishers.json?granularity=hour", headers=AUTH)
        ).json()
        daily_csv = await client.get(
            f"{gw}/admin/publishers.csv?granularity=day&by=sub_id", headers=AUTH
        )
    rows = {r["publisher_id"]: r for r in total["rows"]}
    assert set(rows) == {None, "pub-1", "pub-2"}
    pub1 = rows["pub-1"]
    assert "sub_id" not in pub1
    assert "period" not in pub1
    assert {k: pub1[k] for k in EXPECTED_PUB1} == EXPECTED_PUB1
    # The sandbox bids at once: every time to bid falls in the first buckets.
    p = pub1["time_to_bid_ms"]
    assert set(p) == {"p50", "p95", "p99"}
    assert 0 < p["p50"] <= p["p95"] <= p["p99"] <= 1000
    assert rows[None]["pings"] == 1
    assert rows[None]["invalid"] == 1
    assert rows[None]["time_to_bid_ms"] == {"p50": None, "p95": None, "p99": None}
    assert rows[None]["bid_rate"] is None
    assert rows["pub-2"]["reserved"] == 1
    assert rows["pub-2"]["confirmed"] == 0

    subs = {(r["publisher_id"], r["sub_id"]): r for r in by_sub["rows"]}
    assert set(subs) == {(None, None), ("pub-1", "s-9"), ("pub-1", None), ("pub-2", "s-1")}
    assert subs[("pub-1", "s-9")]["pings"] == 7
    assert subs[("pub-1", "s-9")]["confirmed"] == 2
    assert subs[("pub-1", "s-9")]["invalid"] == 1  # counted for the sub-ID it named
    assert subs[("pub-1", None)]["pings"] == 1

    assert hourly["granularity"] == "hour"
    assert sum(r["pings"] for r in hourly["rows"]) == 10
    assert all(r["period"].endswith(":00:00Z") for r in hourly["rows"])

    assert daily_csv.status_code == 200
    assert daily_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(daily_csv.text)))
    s9 = next(r for r in table if r["sub_id"] == "s-9")
    assert s9["period"].endswith("T00:00:00Z")
    assert (s9["pings"], s9["reserved"], s9["confirmed"], s9["bid_rate"]) == ("7", "3", "2", "0.75")
    assert float(s9["time_to_bid_ms_p50"]) > 0


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"by": "caller"}, "by"),
        ({"granularity": "minute"}, "granularity"),
        ({"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "to"),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    params: dict[str, str],
    named: str,
    make_gateway: MakeGateway,
    sandbox_url: str,
    client: httpx.AsyncClient,
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        for suffix in (".json", ".csv"):
            resp = await client.get(f"{gw}/admin/publishers{suffix}", params=params)
            assert resp.status_code == 400
            assert list(resp.json()["fields"]) == [named]


async def test_rows_are_bounded(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url, analytics_max_rows=2) as gw:
        for n in range(3):
            await client.post(
                f"{gw}/rtbs.json",
                json={"key": RTB_KEY, "publisher_id": f"p{n}", "caller_number": f"+1855848550{n}"},
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            full = (await client.get(f"{gw}/admin/publishers.json")).json()
            if full["truncated"] or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        csv_resp = await client.get(f"{gw}/admin/publishers.csv")
    assert full["truncated"] is True
    assert [r["publisher_id"] for r in full["rows"]] == ["p0", "p1"]
    assert csv_resp.headers["x-truncated"] == "true"
    assert len(csv_resp.text.strip().splitlines()) == 3


async def test_admin_guard_holds_and_a_browser_gets_the_token_form(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url, admin_token=Secret(TOKEN)) as gw:
        await client.post(
            f"{gw}/rtbs.json",
            json={"key": RTB_KEY, "publisher_id": "pub-zq7", "caller_number": "+18558485518"},
        )
        await wait_analytics(client, gw, 1)
        json_missing = await client.get(f"{gw}/admin/publishers.json")
        csv_wrong = await client.get(
            f"{gw}/admin/publishers.csv", headers={"authorization": f"Bearer {TOKEN}x"}
        )
        page_api = await client.get(f"{gw}/admin/publishers")
        page_browser = await client.get(
            f"{gw}/admin/publishers", headers={"accept": "text/html,*/*"}
        )
        page_ok = await client.get(f"{gw}/admin/publishers", headers=AUTH)
        status = await client.get(f"{gw}/status")
        stats = await client.get(f"{gw}/stats")
    for refused in (json_missing, csv_wrong, page_api):
        assert refused.status_code == 401
        assert refused.json()["error"] == "unauthorized"
    assert page_browser.status_code == 401
    assert page_browser.headers["content-type"].startswith("text/html")
    assert 'id="login"' in page_browser.text
    assert page_ok.status_code == 200
    assert page_ok.text == page_browser.text  # the page holds no data, only the form
    assert "connect-src 'self'" in page_ok.headers["content-security-policy"]
    for public in (status, stats):
        assert public.status_code == 200
        assert "pub-zq7" not in public.text  # publisher data never on the public pages


async def test_csv_cells_never_run_as_formulas(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        await client.post(
            f"{gw}/rtbs.json",
            json={"key": RTB_KEY, "publisher_id": "=HYPERLINK(1)", "caller_number": "+18558485518"},
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            text = (await client.get(f"{gw}/admin/publishers.csv")).text
            if "HYPERLINK" in text or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        raw = (await client.get(f"{gw}/admin/publishers.json")).json()
    assert ",'=HYPERLINK(1)," in text
    assert raw["rows"][0]["publisher_id"] == "=HYPERLINK(1)"


async def test_in_process_rollups_are_bounded_and_count_evictions(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url, ledger_memory_max_rollups=1) as gw:
        for n in range(2):
            await client.post(
                f"{gw}/rtbs.json",
                json={"key": RTB_KEY, "publisher_id": f"p{n}", "caller_number": f"+1855848550{n}"},
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            metrics = (await client.get(f"{gw}/metrics")).text
            if "gateway_ledger_rollups_evicted_total 1.0" in metrics or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        rows = (await client.get(f"{gw}/admin/publishers.json")).json()["rows"]
    assert "gateway_ledger_rollups_evicted_total 1.0" in metrics
    assert [r["publisher_id"] for r in rows] == ["p1"]  # the newest stayed
