"""Write routes: credentials, the documented bodies and answers, and the data changing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox.conftest import AUTH, C1, parse_xml


async def test_affiliate_lifecycle(sandbox: tuple[str, Any], client: httpx.AsyncClient) -> None:
    url, _ = sandbox
    body = {"affiliate": {"first_name": "Nancy", "last_name": "Drew", "afid": "0099"}}
    created = await client.post(f"{url}/affiliates.json?{AUTH}", json=body)
    assert created.status_code == 201
    assert created.json()["affiliate"]["afid"] == "0099"
    updated = await client.put(
        f"{url}/affiliates/afid/0099.json?{AUTH}", json={"affiliate": {"first_name": "Nathan"}}
    )
    assert updated.status_code == 200
    assert updated.json()["affiliate"]["first_name"] == "Nathan"
    assert updated.json()["affiliate"]["last_name"] == "Drew"
    shown = await client.get(f"{url}/affiliates/{created.json()['affiliate']['id']}.json?{AUTH}")
    assert shown.json() == updated.json()
    assert (await client.delete(f"{url}/affiliates/afid/0099.json?{AUTH}")).status_code == 204
    assert (await client.get(f"{url}/affiliates/afid/0099.json?{AUTH}")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/affiliates.json"),
        ("PUT", "/targets/6588.json"),
        ("DELETE", "/numbers/5.json"),
        ("POST", "/targets/6588/reset_cap.json"),
        ("POST", "/suppressed_numbers/+13216065590.json"),
    ],
)
@pytest.mark.parametrize(
    ("query", "status"), [("", 401), ("api_key=meowmeowmeow&company_id=1", 403)]
)
async def test_writes_need_credentials(
    sandbox: tuple[str, Any],
    client: httpx.AsyncClient,
    method: str,
    path: str,
    query: str,
    status: int,
) -> None:
    url, app = sandbox
    before = len(app.state.core_api.data.by_company[1].numbers)
    response = await client.request(method, f"{url}{path}?{query}", json={})
    assert response.status_code == status
    assert len(app.state.core_api.data.by_company[1].numbers) == before


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{bad json", 400),
        (b"[]", 400),
        (b'{"target": "paused"}', 400),
        (b'{"target": {"priority": "high"}}', 422),
        (b'{"target": {"number": ""}}', 422),
    ],
)
async def test_bad_bodies(
    sandbox: tuple[str, Any], client: httpx.AsyncClient, content: bytes, status: int
) -> None:
    url, _ = sandbox
    before = (await client.get(f"{url}/targets/6588.json?{AUTH}")).content
    response = await client.put(
        f"{url}/targets/6588.json?{AUTH}",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status
    assert isinstance(response.json()["error"], str)
    assert (await client.get(f"{url}/targets/6588.json?{AUTH}")).content == before


async def test_target_caps_tags_pause_and_reset(
    sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, app = sandbox
    target = f"{url}/targets/6588.json?{AUTH}"
    tags = "<<<calling_about:support>>>,<<<calling_about:other>>>"
    body = {"target": {"paused": True, "hard_cap_attributes": {"cap": 100}, "tag_list": tags}}
    changed = (await client.put(target, json=body)).json()["target"]
    assert changed["paused"] is True
    assert changed["paused_at"] is not None
    assert next(c for c in changed["caps"] if c["type"] == "Hard")["cap"] == 100
    assert [(t["key"], t["value"]) for t in changed["tag_values"]] == [
        ("calling_about", "support"),
        ("calling_about", "other"),
    ]
    app.state.core_api.data.by_company[1].targets[0]["caps"][1]["filled"] = 42
    reset = await client.post(f"{url}/targets/6588/reset_cap.json?{AUTH}")
    assert reset.status_code == 200
    assert next(c for c in reset.json()["target"]["caps"] if c["type"] == "Hard")["filled"] == 0
    cleared = (await client.put(target, json={"target": {"tag_list": ""}})).json()["target"]
    assert cleared["tag_values"] == []


async def test_create_target_with_defaults(
    sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    body = {"target": {"number": "+18668987878", "name": "Retreaver Support"}}
    created = await client.post(f"{url}/targets.json?{AUTH}", json=body)
    assert created.status_code == 201
    target = created.json()["target"]
    assert (target["timeout_seconds"], target["time_zone"], target["priority"]) == (30, "UTC", 1)
    assert [c["type"] for c in target["caps"]] == ["Daily", "Hard", "Hourly", "Monthly"]
    assert [b["day_of_week"] for b in target["business_hours"]] == list(range(7))
    listed = (await client.get(f"{url}/targets.json?{AUTH}")).json()
    assert listed[-1] == created.json()


async def test_target_group_membership(sandbox: tuple[str, Any], client: httpx.AsyncClient) -> None:
    url, _ = sandbox
    group = f"{url}/target_groups/1.json?{AUTH}"
    start = (await client.get(group)).json()["target_group"]["target_ids"]
    added = await client.put(group, json={"target_group": {"add_targets_by_id": [6593]}})
    assert added.json()["target_group"]["target_ids"] == [*start, 6593]
    removed = await client.put(group, json={"target_group": {"remove_targets_by_id": [start[0]]}})
    assert removed.json()["target_group"]["target_ids"] == [*start[1:], 6593]
    replaced = await client.put(group, json={"target_group": {"target_ids": [6590, 6591]}})
    assert replaced.json()["target_group"]["target_ids"] == [6590, 6591]
    unknown = await client.put(group, json={"target_group": {"target_ids": [1]}})
    assert unknown.status_code == 422


async def test_campaign_then_number(sandbox: tuple[str, Any], client: httpx.AsyncClient) -> None:
    url, _ = sandbox
    campaign = {
        "campaign": {
            "cid": "000333",
            "name": "MyCampaign",
            "message": "Thanks for calling, please press one to continue.",
            "voice_gender": "Male",
            "timers_attributes": [
                {"seconds": 0, "url": "http://callpixels.com/click.html"},
                {"seconds": 90, "url": "http://callpixels.com/sale.html"},
            ],
            "menu_options_attributes": [{"option": "1", "target_number": "+16474570424"}],
        }
    }
    made = await client.post(f"{url}/campaigns.json?{AUTH}", json=campaign)
    assert made.status_code == 201
    assert [t["timer"]["seconds"] for t in made.json()["campaign"]["timers"]] == [0, 90]
    again = await client.post(f"{url}/campaigns.json?{AUTH}", json=campaign)
    assert again.status_code == 422
    number = {"number": {"type": "Toll-free", "afid": "0777", "cid": "000333", "sid": "super"}}
    provisioned = await client.post(f"{url}/numbers.json?{AUTH}", json=number)
    assert provisioned.status_code == 201
    record = provisioned.json()["number"]
    assert record["toll_free"] is True
    assert record["greeting"]["inherited"] is True
    assert (await client.get(f"{url}/affiliates/afid/0777.json?{AUTH}")).status_code == 200
    blocked = await client.delete(f"{url}/campaigns/cid/000333.json?{AUTH}")
    assert blocked.status_code == 422
    assert (await client.delete(f"{url}/numbers/{record['id']}.json?{AUTH}")).status_code == 204
    assert (await client.delete(f"{url}/campaigns/cid/000333.json?{AUTH}")).status_code == 204
    dangling = {"number": {"afid": "0001", "cid": "nope"}}
    assert (await client.post(f"{url}/numbers.json?{AUTH}", json=dangling)).status_code == 422


async def test_suppression_routes(sandbox: tuple[str, Any], client: httpx.AsyncClient) -> None:
    url, _ = sandbox
    made = await client.post(
        f"{url}/suppressed_numbers/+13216065590.json?{AUTH}",
        json={"suppressed_number": {"can_resubscribe": False}},
    )
    assert made.status_code == 201
    flat = made.json()
    assert set(flat) == {
        "id", "company_id", "affiliate_id", "campaign_id", "number",
        "created_at", "updated_at", "can_resubscribe",
    }  # fmt: skip
    assert (flat["number"], flat["can_resubscribe"]) == ("+13216065590", False)
    put = await client.put(
        f"{url}/suppressed_numbers/+13216065590.json?{AUTH}",
        json={"can_resubscribe": True, "campaign_id": "111"},
    )
    assert put.json()["suppressed_number"]["can_resubscribe"] is True
    campaign_111 = next(c for c in C1.campaigns if c["cid"] == "111")
    assert put.json()["suppressed_number"]["cid"] == campaign_111["id"]  # an integer
    legacy = await client.post(f"{url}/contact_numbers/+18668987878/suppressed_number.json?{AUTH}")
    assert legacy.status_code == 201
    assert legacy.json()["suppressed_number"]["can_resubscribe"] is True
    for entry in (await client.get(f"{url}/suppressed_numbers.json?{AUTH}")).json():
        number = entry["suppressed_number"]["number"]
        deleted = await client.delete(f"{url}/suppressed_numbers/{number}.json?{AUTH}")
        assert deleted.status_code == 204
    check = await client.get(f"{url}/suppressed_numbers/check.json?{AUTH}")
    assert check.json() == {"suppressed_numbers_exist": False}
    legacy_check = await client.get(f"{url}/suppression_list/check.json?{AUTH}")
    assert legacy_check.json() == {"suppression_list": False}


async def test_contacts_by_number(sandbox: tuple[str, Any], client: httpx.AsyncClient) -> None:
    url, _ = sandbox
    body = {
        "contact": {
            "tag_list": "<<<name:Retreaver Support>>>",
            "contact_numbers_attributes": [{"number": "8668987870", "description": "Landline"}],
        }
    }
    made = await client.post(f"{url}/contacts.json?{AUTH}", json=body)
    assert made.status_code == 201
    assert made.json()["contact"]["contact_numbers"][0]["number"] == "+18668987870"
    renamed = await client.put(
        f"{url}/contact_numbers/+18668987870.json?{AUTH}",
        json={"contact_number": {"number": "+18005551234"}},
    )
    assert renamed.json()["contact_number"]["number"] == "+18005551234"
    retagged = await client.put(
        f"{url}/contact_numbers/+18005551234/contact.json?{AUTH}",
        json={"contact": {"tag_list": "<<<name:Invalid Number>>>"}},
    )
    assert retagged.json()["contact"]["tag_values"][0]["value"] == "Invalid Number"
    last = await client.delete(f"{url}/contact_numbers/+18005551234.json?{AUTH}")
    assert last.status_code == 422
    gone = await client.delete(f"{url}/contact_numbers/+18005551234/contact.json?{AUTH}")
    assert gone.status_code == 204
    missing = await client.get(f"{url}/contact_numbers/+18005551234/contact.json?{AUTH}")
    assert missing.status_code == 404


async def test_xml_write_answer_and_reset(
    sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    made = await client.post(
        f"{url}/static_caller_numbers.xml?{AUTH}",
        json={"static_caller_number": {"number": "+18668987878"}},
    )
    assert made.status_code == 201
    assert parse_xml(made.content).findtext("number") == "+18668987878"
    listed = (await client.get(f"{url}/static_caller_numbers.json?{AUTH}")).json()
    assert len(listed) == len(C1.static_caller_numbers) + 1
    await client.post(f"{url}/_sandbox/core_api/reset")
    again = (await client.get(f"{url}/static_caller_numbers.json?{AUTH}")).json()
    assert len(again) == len(C1.static_caller_numbers)


async def test_company_created_is_reachable_by_its_creator_only(
    sandbox: tuple[str, Any], client: httpx.AsyncClient
) -> None:
    url, _ = sandbox
    made = await client.post(
        f"{url}/companies.json?api_key=barkbarkbark", json={"company": {"name": "CallPixels.com"}}
    )
    assert made.status_code == 201
    new_id = made.json()["company"]["id"]
    mine = await client.get(f"{url}/companies/{new_id}.json?api_key=barkbarkbark")
    assert mine.json()["company"]["name"] == "CallPixels.com"
    other = await client.get(f"{url}/companies/{new_id}.json?api_key=woofwoofwoof")
    assert other.status_code == 404
    empty = await client.get(f"{url}/calls.json?api_key=barkbarkbark&company_id={new_id}")
    assert empty.json() == []
    assert (
        await client.delete(f"{url}/companies/{new_id}.json?api_key=barkbarkbark")
    ).status_code == 204
