"""Caller lists through the gateway against the sandbox: a postback ``key`` and an
``Authorization: Bearer`` secret, forwarded; answers cached per secret, never shared."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.sandbox.api import CoreApiState
from gateway.sandbox.api.postback import POSTBACK_KEYS
from gateway.sandbox.api.seeding import seed
from tests.coreapi.conftest import ServeGateway

KEY, KEY2 = list(POSTBACK_KEYS)[:2]
BEARER = {"Authorization": f"Bearer {POSTBACK_KEYS[KEY].secret}"}
BEARER2 = {"Authorization": f"Bearer {POSTBACK_KEYS[KEY2].secret}"}
TARGET = seed().by_company[1].targets[0]["id"]
LIST = f"/api/v2/targets/{TARGET}/caller_lists/suppressed"
ON_LIST = "+15855752500"


async def test_right_secret_is_200_byte_for_byte_and_the_header_reaches_the_upstream(
    serve_gateway: ServeGateway,
    sandbox: tuple[str, Any],
    core: CoreApiState,
    client: httpx.AsyncClient,
) -> None:
    targets = [f"{LIST}.json?key={KEY}", f"{LIST}/caller_list_numbers/{ON_LIST}.json?key={KEY}"]
    async with serve_gateway() as (url, _):
        for target in targets:
            direct = await client.get(sandbox[0] + target, headers=BEARER)
            core.received.clear()
            through = await client.get(url + target, headers=BEARER)
            assert direct.status_code == 200, direct.text
            assert (through.status_code, through.content) == (200, direct.content)
            assert through.headers["content-type"] == direct.headers["content-type"]
            assert through.headers["x-cache"] == "miss"
            (seen,) = core.received
            assert seen["authorization"] == BEARER["Authorization"]
            assert seen["raw_path"] + "?" + seen["query"] == target
    assert through.json()["caller_list_number"]["number"] == ON_LIST


async def test_wrong_or_missing_secret_is_never_served_a_cached_answer(
    serve_gateway: ServeGateway, core: CoreApiState, client: httpx.AsyncClient
) -> None:
    target = f"{LIST}.json?key={KEY}"
    async with serve_gateway() as (url, _):
        right = await client.get(url + target, headers=BEARER)
        cached = await client.get(url + target, headers=BEARER)
        wrong = await client.get(url + target, headers={"Authorization": "Bearer guess"})
        other_key_secret = await client.get(url + target, headers=BEARER2)
        missing = await client.get(url + target)
        lower = await client.get(
            url + target, headers={"Authorization": BEARER["Authorization"].lower()}
        )
    assert (right.status_code, cached.status_code) == (200, 200)
    assert cached.headers["x-cache"] == "hit"
    for refused in (wrong, other_key_secret, missing, lower):
        assert refused.status_code == 401, refused.text
        assert refused.headers["x-cache"] == "miss"
        assert "caller_list" not in refused.text
    # Every refused request went to the upstream: none was answered from the cache.
    assert [r["authorization"] for r in core.received] == [
        BEARER["Authorization"],
        "Bearer guess",
        BEARER2["Authorization"],
        None,
        BEARER["Authorization"].lower(),
    ]


async def test_authorization_is_not_forwarded_where_the_reference_does_not_use_it(
    serve_gateway: ServeGateway, core: CoreApiState, client: httpx.AsyncClient
) -> None:
    async with serve_gateway() as (url, _):
        answer = await client.get(
            f"{url}/affiliates.json?api_key=woofwoofwoof&company_id=1", headers=BEARER
        )
    assert answer.status_code == 200
    assert [r["authorization"] for r in core.received] == [None]


async def test_a_number_not_on_the_list_is_the_upstreams_404(
    serve_gateway: ServeGateway, sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    target = f"{LIST}/caller_list_numbers/5855750000.json?key={KEY}"
    direct = await client.get(sandbox[0] + target, headers=BEARER)
    async with serve_gateway() as (url, _):
        through = await client.get(url + target, headers=BEARER)
    assert direct.status_code == 404
    assert (through.status_code, through.content) == (404, direct.content)


async def test_caller_list_checks_is_forwarded_without_writes_never_cached_or_retried(
    serve_gateway: ServeGateway,
    sandbox: tuple[str, Any],
    core: CoreApiState,
    client: httpx.AsyncClient,
) -> None:
    target = f"{LIST}/caller_list_checks.json?key={KEY}"
    present = {"caller_list_check": {"number": ON_LIST}}
    absent = {"caller_list_check": {"number": "5855750000"}}
    async with serve_gateway() as (url, _):
        answers = [
            await client.post(url + target, json=body, headers=BEARER)
            for body in (present, present, absent)
        ]
        await client.post(f"{sandbox[0]}/_sandbox/config", json={"core_api_429": 1})
        core.received.clear()
        throttled = await client.post(url + target, json=present, headers=BEARER)
        refused = await client.delete(f"{url}{LIST}.json?key={KEY}", headers=BEARER)
    statuses = [a.json()["caller_list_check"]["status"] for a in answers]
    assert statuses == ["present", "present", "not-present"]
    assert all("x-cache" not in a.headers for a in answers)
    assert throttled.status_code == 429
    assert len(core.received) == 1  # the 429 went back; the POST was not retried
    assert core.received[0]["authorization"] == BEARER["Authorization"]
    assert refused.status_code == 405  # a real write still needs the flag


async def test_caller_list_writes_go_through_and_clear_the_cached_reads(
    serve_gateway: ServeGateway, client: httpx.AsyncClient
) -> None:
    number = f"{LIST}/caller_list_numbers/{ON_LIST}.json?key={KEY}"
    async with serve_gateway(core_api_allow_writes=True) as (url, _):
        before = await client.get(url + number, headers=BEARER)
        again = await client.get(url + number, headers=BEARER)
        removed = await client.delete(url + number, headers=BEARER)
        after = await client.get(url + number, headers=BEARER)
        added = await client.post(
            f"{url}{LIST}/caller_list_numbers.json?key={KEY}",
            json={"caller_list_number": {"number": ON_LIST}},
            headers=BEARER,
        )
        uploaded = await client.post(
            f"{url}{LIST}/caller_list_uploads.json?key={KEY}",
            json={"caller_list_upload": {"numbers": "+15855752501\n5855752502"}},
            headers=BEARER,
        )
        listed = await client.get(
            f"{url}{LIST}/caller_list_numbers/+15855752502.json?key={KEY}", headers=BEARER
        )
        created = await client.post(
            f"{url}/api/v2/targets/{TARGET}/caller_lists.json?key={KEY}",
            json={"caller_list": {"name": "vip"}},
            headers=BEARER,
        )
    assert (before.status_code, again.headers["x-cache"]) == (200, "hit")
    assert removed.status_code == 204
    assert after.status_code == 404  # never the cached 200
    assert added.status_code == 201
    assert uploaded.json()["caller_list_upload"]["status"] == "Processing"
    assert listed.status_code == 200
    assert created.json()["caller_list"]["name"] == "vip"
