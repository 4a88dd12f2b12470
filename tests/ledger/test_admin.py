"""Admin authorization and the ledger export's parameters, tried from outside."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.requests import Request

from gateway.config import Secret
from gateway.errors import LoopbackOnly
from gateway.ledger.admin import AdminAuth
from tests.conftest import RTB_KEY, MakeGateway
from tests.ledger.helpers import export, wait_rows

TOKEN = "t0ken-for-the-admin-routes"
PING = {"key": RTB_KEY, "publisher_id": "pub-1", "caller_number": "+18558485518"}


async def test_the_token_is_required_when_set(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url, admin_token=Secret(TOKEN)) as gw:
        url = f"{gw}/admin/ledger.ndjson"
        missing = await client.get(url)
        wrong = await client.get(url, headers={"authorization": f"Bearer {TOKEN}x"})
        basic = await client.get(url, headers={"authorization": f"Basic {TOKEN}"})
        right = await client.get(url, headers={"authorization": f"Bearer {TOKEN}"})
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert refused.json()["error"] == "unauthorized"
        assert TOKEN not in refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert right.status_code == 200


def _request(host: str | None) -> Request:
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/admin/x", "headers": []}
    scope["client"] = (host, 50000) if host else None
    return Request(scope)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1"])
def test_without_a_token_loopback_clients_are_answered(host: str) -> None:
    AdminAuth(None).check(_request(host))


@pytest.mark.parametrize("host", ["10.0.0.5", "192.0.2.7", "fd00::2", "localhost", None])
def test_without_a_token_other_clients_get_403(host: str | None) -> None:
    with pytest.raises(LoopbackOnly) as caught:
        AdminAuth(None).check(_request(host))
    assert caught.value.status == 403


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01T00:00:00Z"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "1000001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "１０"}, "limit"),
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "until"),
    ],
)
async def test_bad_export_parameters_are_400_naming_them(
    params: dict[str, str],
    named: str,
    make_gateway: MakeGateway,
    sandbox_url: str,
    client: httpx.AsyncClient,
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        resp = await client.get(f"{gw}/admin/ledger.ndjson", params=params)
    assert resp.status_code == 400
    assert list(resp.json()["fields"]) == [named]


async def test_export_window_and_limit(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        for n in range(5):
            await client.post(f"{gw}/rtbs.json", json={**PING, "caller_number": f"+1855848551{n}"})
        rows = await wait_rows(client, gw, 5)
        assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
        first_two = await export(client, gw, limit=2)
        after = await export(client, gw, since=rows[2]["at"])
        before = await export(client, gw, until=rows[2]["at"])
        none = await export(client, gw, since="2000-01-01T00:00:00Z", until="2000-01-02T00:00:00Z")
    assert first_two == rows[:2]
    # The export's times are the rows' own (milliseconds): since inclusive, until exclusive.
    assert after == [r for r in rows if r["at"] >= rows[2]["at"]]
    assert before == [r for r in rows if r["at"] < rows[2]["at"]]
    assert rows[2] in after
    assert none == []
