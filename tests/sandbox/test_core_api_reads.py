"""Every GET route of the reference, in JSON and (where offered) XML: status, content type,
and the documented shape (``[{"affiliate": {...}}]``, ``{"affiliate": {...}}``, Rails XML)."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from tests.sandbox.conftest import AUTH, C1, parse_xml

pytestmark = pytest.mark.asyncio(loop_scope="module")

UUID = C1.calls[7].uuid
CONTACT_NUMBER = C1.contacts[1]["contact_numbers"][0]["number"]
SUPPRESSED = C1.suppressed_numbers[0]["number"]

# (path without extension, query beyond auth, JSON root, "list" | "one" | "hash", formats)
ROUTES: list[tuple[str, str, str, str, tuple[str, ...]]] = [
    ("/calls", "", "call", "list", ("json", "xml")),
    (f"/calls/{UUID}", "", "call", "one", ("json", "xml")),
    ("/api/v2/calls", "", "call", "list", ("json",)),
    (f"/api/v2/calls/{UUID}", "", "call", "one", ("json",)),
    ("/affiliates", "", "affiliate", "list", ("json", "xml")),
    (f"/affiliates/{C1.affiliates[1]['id']}", "", "affiliate", "one", ("json", "xml")),
    (f"/affiliates/afid/{C1.affiliates[1]['afid']}", "", "affiliate", "one", ("json", "xml")),
    ("/targets", "", "target", "list", ("json", "xml")),
    (f"/targets/{C1.targets[0]['id']}", "", "target", "one", ("json", "xml")),
    (f"/targets/tid/{C1.targets[1]['tid']}", "", "target", "one", ("json", "xml")),
    ("/campaigns", "", "campaign", "list", ("json", "xml")),
    (f"/campaigns/{C1.campaigns[0]['id']}", "", "campaign", "one", ("json", "xml")),
    (f"/campaigns/cid/{C1.campaigns[2]['cid']}", "", "campaign", "one", ("json", "xml")),
    ("/numbers", "", "number", "list", ("json", "xml")),
    ("/numbers", "cid=111&afid=0001", "number", "list", ("json", "xml")),
    (f"/numbers/{C1.numbers[0]['id']}", "", "number", "one", ("json", "xml")),
    ("/number_pools", "", "number_pool", "list", ("json", "xml")),
    (f"/number_pools/{C1.number_pools[0]['id']}", "", "number_pool", "one", ("json", "xml")),
    ("/company", "", "company", "one", ("json", "xml")),
    ("/companies", "", "company", "list", ("json", "xml")),
    ("/companies/2", "", "company", "one", ("json", "xml")),
    ("/contacts", "", "contact", "list", ("json", "xml")),
    (f"/contacts/{C1.contacts[0]['id']}", "", "contact", "one", ("json", "xml")),
    (f"/contact_numbers/{CONTACT_NUMBER}/contact", "", "contact", "one", ("json", "xml")),
    (f"/contact_numbers/{CONTACT_NUMBER}", "", "contact_number", "one", ("json", "xml")),
    ("/suppressed_numbers/check", "", "suppressed_numbers_exist", "hash", ("json", "xml")),
    ("/suppressed_numbers", "", "suppressed_number", "list", ("json", "xml")),
    (f"/suppressed_numbers/{SUPPRESSED}", "", "suppressed_number", "one", ("json", "xml")),
    ("/suppression_list/check", "", "suppression_list", "hash", ("json", "xml")),
    ("/static_caller_numbers", "", "static_caller_number", "list", ("json", "xml")),
    ("/target_groups", "", "target_group", "list", ("json", "xml")),
    (f"/target_groups/{C1.target_groups[0]['id']}", "", "target_group", "one", ("json", "xml")),
    (
        "/api/v1/reports",
        "domain=calls&facet=campaign&created_at_start=2024-10-25&created_at_end=2024-11-28",
        "data",
        "hash",
        ("json",),
    ),
]

CASES = [
    pytest.param(path, query, root, kind, fmt, id=f"{path}.{fmt}?{query}")
    for path, query, root, kind, formats in ROUTES
    for fmt in formats
]


def _url(base: str, path: str, fmt: str, query: str) -> str:
    return f"{base}{path}.{fmt}?{AUTH}" + (f"&{query}" if query else "")


def _plural(root: str) -> str:
    return "companies" if root == "company" else f"{root}s"


@pytest.mark.parametrize(("path", "query", "root", "kind", "fmt"), CASES)
async def test_route_answers_documented_shape(
    shared_sandbox: str,
    shared_client: httpx.AsyncClient,
    path: str,
    query: str,
    root: str,
    kind: str,
    fmt: str,
) -> None:
    response = await shared_client.get(_url(shared_sandbox, path, fmt, query))
    assert response.status_code == 200, response.text
    if fmt == "json":
        assert response.headers["content-type"] == "application/json"
        body = msgspec.json.decode(response.content)
        if kind == "list":
            assert isinstance(body, list)
            assert body
            assert all(list(item) == [root] and isinstance(item[root], dict) for item in body)
        elif kind == "one":
            assert list(body) == [root]
            assert isinstance(body[root], dict)
        else:
            assert root in body
        return
    assert response.headers["content-type"].startswith("text/xml")
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    doc = parse_xml(response.content)
    tag = root.replace("_", "-")
    if kind == "list":
        assert doc.tag == _plural(root).replace("_", "-")
        assert doc.get("type") == "array"
        assert len(doc) > 0
        assert all(child.tag == tag for child in doc)
    elif kind == "one":
        assert doc.tag == tag
        assert len(doc) > 0
    else:
        assert doc.tag == "hash"
        assert doc.find(tag) is not None


@pytest.mark.parametrize(
    "path",
    ["/api/v2/calls.xml", f"/api/v2/calls/{UUID}.xml", "/api/v1/reports.xml", "/affiliates.csv"],
)
async def test_formats_the_reference_does_not_offer_are_406(
    shared_sandbox: str, shared_client: httpx.AsyncClient, path: str
) -> None:
    response = await shared_client.get(f"{shared_sandbox}{path}?{AUTH}")
    assert response.status_code == 406
    assert isinstance(response.json()["error"], str)


async def test_json_and_xml_carry_the_same_record(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    target = C1.targets[1]
    as_json = (
        await shared_client.get(_url(shared_sandbox, f"/targets/{target['id']}", "json", ""))
    ).json()
    as_xml = parse_xml(
        (
            await shared_client.get(_url(shared_sandbox, f"/targets/{target['id']}", "xml", ""))
        ).content
    )
    record = as_json["target"]
    groups = [g for g in C1.target_groups if target["id"] in g["target_ids"]]
    assert record["target_group_ids"] == [g["id"] for g in groups]
    assert [g["name"] for g in record.pop("target_groups")] == [g["name"] for g in groups]
    del record["target_group_ids"]
    assert record == target
    ids = as_xml.find("target-group-ids")
    assert [int(i.text or "") for i in ids] == [g["id"] for g in groups]  # type: ignore[union-attr]
    assert as_xml.findtext("id") == str(target["id"])
    assert as_xml.find("id").get("type") == "integer"  # type: ignore[union-attr]
    assert as_xml.findtext("time-zone") == target["time_zone"]
    assert as_xml.find("send-digits").get("nil") == "true"  # type: ignore[union-attr]
    assert as_xml.find("paused").get("type") == "boolean"  # type: ignore[union-attr]
    assert as_xml.find("created-at").get("type") == "datetime"  # type: ignore[union-attr]
    caps = as_xml.find("caps")
    assert caps is not None
    assert caps.get("type") == "array"
    assert [c.findtext("type") for c in caps] == ["Daily", "Hard", "Hourly", "Monthly"]


async def test_v1_and_v2_calls_differ_as_documented(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    v1 = (await shared_client.get(f"{shared_sandbox}/calls/{UUID}.json?{AUTH}")).json()["call"]
    v2 = (await shared_client.get(f"{shared_sandbox}/api/v2/calls/{UUID}.json?{AUTH}")).json()[
        "call"
    ]
    assert set(v1) < set(v2)
    assert {
        k: v2[k]
        for k in v1
        if k not in ("start_time", "forwarded_time", "end_time", "updated_at", "created_at")
    } == {
        k: v
        for k, v in v1.items()
        if k not in ("start_time", "forwarded_time", "end_time", "updated_at", "created_at")
    }
    new_in_v2 = {
        "affiliate_name",
        "campaign_id",
        "campaign_name",
        "connected",
        "number_id",
        "profit_gross",
        "profit_net",
        "target_id",
        "target_name",
        "time_to_call_in_seconds",
        "time_to_connect_in_seconds",
        "total_cost",
    }
    assert new_in_v2 <= set(v2) - set(v1)


async def test_numbers_filters(shared_sandbox: str, shared_client: httpx.AsyncClient) -> None:
    for name, value in (("cid", "111"), ("afid", "0002"), ("sid", "search")):
        response = await shared_client.get(f"{shared_sandbox}/numbers.json?{AUTH}&{name}={value}")
        found = [n["number"] for n in response.json()]
        expected = [n for n in C1.numbers if n[name] == value]
        assert found
        assert [n[name] for n in found] == [value] * len(expected)
        assert [n["id"] for n in found] == [n["id"] for n in expected]


async def test_phone_number_in_path_keeps_its_plus_encoded_or_not(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    plain = await shared_client.get(f"{shared_sandbox}/suppressed_numbers/{SUPPRESSED}.json?{AUTH}")
    encoded = await shared_client.get(
        f"{shared_sandbox}/suppressed_numbers/%2B{SUPPRESSED[1:]}.json?{AUTH}"
    )
    assert plain.status_code == encoded.status_code == 200
    assert plain.content == encoded.content
    assert plain.json()["suppressed_number"]["number"] == SUPPRESSED


async def test_other_companies_data_stays_apart(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    mine = (
        await shared_client.get(f"{shared_sandbox}/affiliates.json?api_key=meowmeowmeow")
    ).json()
    theirs = (await shared_client.get(f"{shared_sandbox}/affiliates.json?{AUTH}")).json()
    assert {a["affiliate"]["id"] for a in mine}.isdisjoint({a["affiliate"]["id"] for a in theirs})
    other_id = theirs[0]["affiliate"]["id"]
    response = await shared_client.get(
        f"{shared_sandbox}/affiliates/{other_id}.json?api_key=meowmeowmeow"
    )
    assert response.status_code == 404


async def test_reports_rows_add_up(shared_sandbox: str, shared_client: httpx.AsyncClient) -> None:
    query = "domain=calls&created_at_start=2024-10-01&created_at_end=2024-12-01"
    for facet in ("publisher", "buyer", "campaign", "number", "daily", "state"):
        response = await shared_client.get(
            f"{shared_sandbox}/api/v1/reports.json?{AUTH}&{query}&facet={facet}&per_page=100"
        )
        body = response.json()
        assert body["count"] == len(body["data"]) == body["count_total"]
        assert sum(row["total_calls"] for row in body["data"]) == len(C1.calls), facet
    daily = await shared_client.get(
        f"{shared_sandbox}/api/v1/reports.json?{AUTH}&{query}&facet=daily&per_page=100"
    )
    assert sorted(r["id"] for r in daily.json()["data"]) == [f"2024-11-0{d}" for d in range(1, 6)]


async def test_tag_value_reports(shared_sandbox: str, shared_client: httpx.AsyncClient) -> None:
    base = (
        f"{shared_sandbox}/api/v1/reports.json?{AUTH}&domain=calls&facet=tag_value"
        "&created_at_start=2024-10-25&created_at_end=2024-11-28"
    )
    keys = (await shared_client.get(base)).json()
    assert {row["id"] for row in keys["data"]} == set(C1.indexed_tags)
    values = (await shared_client.get(base + "&tag_value_key=utm_campaign")).json()
    assert {row["id"] for row in values["data"]} == {
        "ret_campaign_123",
        "ret_campaign_456",
        "ret_campaign_789",
    }
    assert sum(row["total_calls"] for row in values["data"]) == len(C1.calls)
    unindexed = (await shared_client.get(base + "&tag_value_key=unindexed_tag_value")).json()
    assert unindexed == {"count": 0, "count_total": 0, "data": []}


async def test_credentials_are_checked_before_the_format(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    response = await shared_client.get(f"{shared_sandbox}/api/v2/calls.xml")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
