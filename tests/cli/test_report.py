"""``gateway report`` as a person runs it: a subprocess against a real gateway's admin API."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys

import httpx

from gateway.config import Secret
from tests.conftest import RTB_KEY, MakeGateway
from tests.ledger.test_analytics import wait_analytics

TOKEN = "t0ken-for-the-admin-routes"


async def _report(*args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    if token:
        env["GATEWAY_ADMIN_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "report", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_report_prints_the_gateways_rows(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url, admin_token=Secret(TOKEN)) as gw:
        for n, (pub, sub) in enumerate(
            [("acme", "a1"), ("acme", "a2"), ("acme", "a2"), ("zeta", None)]
        ):
            ping = {"key": RTB_KEY, "publisher_id": pub, "caller_number": f"+1855848550{n}"}
            if sub:
                ping["sub_id"] = sub
            resp = await client.post(f"{gw}/rtbs.json", json=ping)
            assert resp.headers["x-outcome"] == "reserved"
        await wait_analytics(client, gw, 4)
        code, table, err = await _report("--url", gw)
        sub_code, sub_csv, _ = await _report("--url", gw, "--by", "sub_id", "--format", "csv")
        bad_code, _, bad_err = await _report("--url", gw, "--from", "yesterday")
        no_token_code, _, no_token_err = await _report("--url", gw, token=None)
        hourly_code, hourly, _ = await _report(
            "--url", gw, "--granularity", "hour", "--from", "2020-01-01T00:00:00Z"
        )
    assert code == 0, err
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["publisher", "pings", "bids", "bid"]
    acme = lines[1].split()
    assert acme[:3] == ["acme", "3", "3"]
    assert acme[3] == "100.0%"
    assert lines[2].split()[:3] == ["zeta", "1", "1"]
    assert lines[3].startswith("2 rows")
    assert sub_code == 0
    rows = list(csv.DictReader(io.StringIO(sub_csv)))
    assert [(r["publisher_id"], r["sub_id"], r["pings"]) for r in rows] == [
        ("acme", "a1", "1"),
        ("acme", "a2", "2"),
        ("zeta", "", "1"),
    ]
    assert bad_code == 1
    assert "from must be an RFC 3339 time" in bad_err
    assert no_token_code == 1
    assert "GATEWAY_ADMIN_TOKEN" in no_token_err
    assert TOKEN not in no_token_err + bad_err + table
    assert hourly_code == 0
    assert hourly.splitlines()[0].split()[:2] == ["period", "publisher"]


async def test_report_says_when_the_gateway_is_unreachable() -> None:
    from tests.support.ports import free_port

    code, _, err = await _report("--url", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert code == 1
    assert "cannot reach" in err
