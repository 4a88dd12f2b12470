"""The sandbox follows the 2026-05 reference: today's company, targets with their groups,
groups with their targets, integer ``cid`` on suppressed numbers, the buyer report's
names and ``in_progress_count``, the ``state`` facet, and business hours in range."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox.conftest import AUTH, C1

COMPANY_FIELDS = {
    "id", "name", "created_at", "updated_at", "embedded_key", "per_number",
    "use_global_suppression_list", "balance", "owner_user_name",
}  # fmt: skip
REPORT = "domain=calls&created_at_start=2024-01-01&created_at_end=2025-12-31&per_page=100"


@pytest.mark.parametrize("path", ["/company.json", "/companies/1.json"])
async def test_company_has_todays_shape(
    sandbox_url: str, client: httpx.AsyncClient, path: str
) -> None:
    company = (await client.get(f"{sandbox_url}{path}?{AUTH}")).json()["company"]
    assert set(company) == COMPANY_FIELDS
    assert company["use_global_suppression_list"] is True
    listed = (await client.get(f"{sandbox_url}/companies.json?{AUTH}")).json()
    assert all(set(entry["company"]) == COMPANY_FIELDS for entry in listed)


async def test_a_created_company_has_todays_shape(
    sandbox_url: str, client: httpx.AsyncClient
) -> None:
    made = await client.post(
        f"{sandbox_url}/companies.json?{AUTH}", json={"company": {"name": "X"}}
    )
    assert made.status_code == 201
    assert set(made.json()["company"]) == COMPANY_FIELDS


async def test_targets_and_groups_name_each_other(
    sandbox_url: str, client: httpx.AsyncClient
) -> None:
    group = C1.target_groups[0]
    shown = (await client.get(f"{sandbox_url}/target_groups/{group['id']}.json?{AUTH}")).json()
    members = shown["target_group"]["targets"]
    assert [t["id"] for t in members] == group["target_ids"]
    assert set(members[0]) == {"id", "number", "name", "priority", "weight"}
    target = (await client.get(f"{sandbox_url}/targets/{members[0]['id']}.json?{AUTH}")).json()
    assert group["id"] in target["target"]["target_group_ids"]
    assert group["name"] in [g["name"] for g in target["target"]["target_groups"]]
    # Membership changes show at once on both sides.
    changed = await client.put(
        f"{sandbox_url}/target_groups/{group['id']}.json?{AUTH}",
        json={"target_group": {"remove_targets_by_id": [members[0]["id"]]}},
    )
    assert changed.status_code == 200
    again = (await client.get(f"{sandbox_url}/targets/{members[0]['id']}.json?{AUTH}")).json()
    assert group["id"] not in again["target"]["target_group_ids"]


async def test_suppressed_numbers_carry_an_integer_cid(
    sandbox_url: str, client: httpx.AsyncClient
) -> None:
    listed = (await client.get(f"{sandbox_url}/suppressed_numbers.json?{AUTH}")).json()
    cids = [e["suppressed_number"]["cid"] for e in listed if "cid" in e["suppressed_number"]]
    assert cids
    assert all(isinstance(cid, int) for cid in cids)
    assert "cid" not in listed[-1]["suppressed_number"]  # only when it has a campaign


async def test_buyer_report_names_and_in_progress_count(
    sandbox_url: str, client: httpx.AsyncClient
) -> None:
    body = (
        await client.get(f"{sandbox_url}/api/v1/reports.json?{AUTH}&{REPORT}&facet=buyer")
    ).json()
    numbers = {t["id"]: t["number"] for t in C1.targets}
    named = [row for row in body["data"] if row["id"] is not None]
    assert named
    assert all(row["facet_name"].endswith(numbers[row["id"]]) for row in named)
    assert "Jason Cell - +18668987878" in [row["facet_name"] for row in named]
    assert all(row["in_progress_count"] == 0.0 for row in body["data"])  # seeded calls are done


async def test_state_facet_groups_by_caller_state(
    sandbox_url: str, client: httpx.AsyncClient
) -> None:
    body = (
        await client.get(f"{sandbox_url}/api/v1/reports.json?{AUTH}&{REPORT}&facet=state")
    ).json()
    states = {c.v2["caller_state"] for c in C1.calls}
    assert {row["id"] for row in body["data"]} == states
    assert sum(row["total_calls"] for row in body["data"]) == len(C1.calls)


@pytest.mark.parametrize(
    "hours",
    [
        {"day_of_week": 7, "time_open": 900, "time_close": 1700},
        {"day_of_week": 1, "time_open": -1, "time_close": 1700},
        {"day_of_week": 1, "time_open": 900, "time_close": 2500},
        {"day_of_week": 1, "time_open": 960, "time_close": 1700},
    ],
)
async def test_out_of_range_business_hours_are_refused_and_change_nothing(
    sandbox_url: str, client: httpx.AsyncClient, hours: dict[str, Any]
) -> None:
    target = C1.targets[0]
    url = f"{sandbox_url}/targets/{target['id']}.json?{AUTH}"
    before = (await client.get(url)).json()
    refused = await client.put(url, json={"target": {"business_hours_attributes": [hours]}})
    assert refused.status_code == 422
    assert "business_hours" in refused.json()["error"]
    assert (await client.get(url)).json() == before
    made = await client.post(
        f"{sandbox_url}/targets.json?{AUTH}",
        json={"target": {"number": "+18005550100", "business_hours_attributes": [hours]}},
    )
    assert made.status_code == 422
