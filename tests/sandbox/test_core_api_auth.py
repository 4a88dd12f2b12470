"""api_key / company_id (401, 403), 404s, 405s, and errors in the requested format."""

from __future__ import annotations

import httpx
import pytest

from tests.sandbox.conftest import AUTH, C1, parse_xml

pytestmark = pytest.mark.asyncio(loop_scope="module")

PATHS = [
    "/calls.json",
    f"/calls/{C1.calls[0].uuid}.json",
    "/api/v2/calls.json",
    "/affiliates.xml",
    "/company.json",
    "/companies.json",
    "/suppressed_numbers/check.json",
    "/api/v1/reports.json?domain=calls&facet=daily&created_at_start=2024-11-01&created_at_end=2024-11-02",
]


def _with(path: str, query: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{query}" if query else path


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 401),
        ("company_id=1", 401),
        ("api_key=nope&company_id=1", 401),
        ("api_key=&company_id=1", 401),
        ("api_key=meowmeowmeow&company_id=1", 403),
        ("api_key=woofwoofwoof&company_id=3", 403),
        ("api_key=woofwoofwoof&company_id=abc", 403),
        ("api_key=barkbarkbark&company_id=2", 403),
    ],
)
async def test_credentials(
    shared_sandbox: str, shared_client: httpx.AsyncClient, path: str, query: str, status: int
) -> None:
    response = await shared_client.get(shared_sandbox + _with(path, query))
    assert response.status_code == status
    if path.split("?")[0].endswith(".xml"):
        assert response.headers["content-type"].startswith("text/xml")
        doc = parse_xml(response.content)
        assert doc.tag == "hash"
        assert doc.findtext("error")
    else:
        body = response.json()
        assert isinstance(body["error"], str)
        assert "woof" not in response.text


async def test_no_company_id_means_the_keys_active_company(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    active = await shared_client.get(f"{shared_sandbox}/company.json?api_key=woofwoofwoof")
    assert active.json()["company"]["id"] == 1
    named = await shared_client.get(
        f"{shared_sandbox}/company.json?api_key=woofwoofwoof&company_id=2"
    )
    assert named.json()["company"]["id"] == 2
    companies = await shared_client.get(f"{shared_sandbox}/companies.json?api_key=woofwoofwoof")
    assert [c["company"]["id"] for c in companies.json()] == [1, 2]
    meow = await shared_client.get(f"{shared_sandbox}/calls.json?api_key=meowmeowmeow")
    assert {c["call"]["uuid"] for c in meow.json()}.isdisjoint(c.uuid for c in C1.calls)


async def test_two_keys_on_one_company_see_the_same_bytes(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    woof = await shared_client.get(
        f"{shared_sandbox}/targets.json?api_key=woofwoofwoof&company_id=1"
    )
    bark = await shared_client.get(f"{shared_sandbox}/targets.json?api_key=barkbarkbark")
    assert woof.status_code == bark.status_code == 200
    assert woof.content == bark.content


@pytest.mark.parametrize(
    "path",
    [
        "/calls/00000000-0000-4000-8000-000000000000.json",
        "/api/v2/calls/00000000-0000-4000-8000-000000000000.json",
        "/affiliates/999.json",
        "/affiliates/afid/nobody.json",
        "/targets/999.json",
        "/targets/tid/nobody.xml",
        "/campaigns/999.json",
        "/campaigns/cid/nobody.json",
        "/numbers/999999.json",
        "/number_pools/999.json",
        "/companies/3.json",
        "/companies/999.json",
        "/contacts/999.json",
        "/contact_numbers/+15555550000/contact.json",
        "/contact_numbers/+15555550000.json",
        "/suppressed_numbers/+15555550000.json",
        "/target_groups/999.json",
    ],
)
async def test_unknown_ids_are_404(
    shared_sandbox: str, shared_client: httpx.AsyncClient, path: str
) -> None:
    response = await shared_client.get(f"{shared_sandbox}{path}?{AUTH}")
    assert response.status_code == 404
    if path.endswith(".xml"):
        assert parse_xml(response.content).findtext("error")
    else:
        assert isinstance(response.json()["error"], str)


@pytest.mark.parametrize(
    "path", ["/nope.json", "/calls", "/calls.json/extra", "/api/v5/calls.json"]
)
async def test_unknown_routes_are_404_before_any_auth(
    shared_sandbox: str, shared_client: httpx.AsyncClient, path: str
) -> None:
    response = await shared_client.get(f"{shared_sandbox}{path}")
    assert response.status_code == 404
    assert isinstance(response.json()["error"], str)


async def test_a_verb_a_route_does_not_take_is_405(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    response = await shared_client.patch(f"{shared_sandbox}/calls.json?{AUTH}")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    assert isinstance(response.json()["error"], str)
