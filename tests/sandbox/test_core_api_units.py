"""Pure pieces of the Core API sandbox: report validation, Link query rewriting, Rails XML,
and the seeded data's determinism and consistency."""

from __future__ import annotations

import msgspec
import pytest

from gateway.sandbox.api.paging import _with_page
from gateway.sandbox.api.render import dasherize, singular, to_xml
from gateway.sandbox.api.report_rows import add_years, validate
from gateway.sandbox.api.seeding import seed
from tests.sandbox.conftest import parse_xml

GOOD = {
    "domain": "calls",
    "facet": "tag_value",
    "created_at_start": "2024-10-25",
    "created_at_end": "2024-10-28",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"domain": "numbers"}, "domain"),
        ({"domain": None}, "domain"),
        ({"facet": "affiliate"}, "facet"),
        ({"facet": None}, "facet"),
        ({"created_at_start": None}, "created_at_start"),
        ({"created_at_end": None}, "created_at_end"),
        ({"created_at_start": "25/10/2024"}, "created_at_start"),
        ({"created_at_end": "2024-10-25"}, "created_at_end"),  # equal: not before
        ({"created_at_end": "2024-10-01"}, "created_at_end"),  # reversed
        ({"created_at_end": "2026-10-25"}, "created_at_end"),  # exactly 2 years
        ({"created_at_end": "2030-01-01"}, "created_at_end"),
    ],
)
def test_validation_names_the_bad_parameter(change: dict[str, str | None], field: str) -> None:
    params = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    problems, _, _ = validate(params)
    assert list(problems) == [field]


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"facet": "daily"},
        {"created_at_end": "2026-10-24T23:59:59+00:00"},  # just under 2 years
        {"created_at_start": "2024-10-25T00:00:00Z", "created_at_end": "2024-10-25T00:00:01Z"},
    ],
)
def test_valid_parameters(change: dict[str, str]) -> None:
    problems, start, end = validate({**GOOD, **change})
    assert problems == {}
    assert start is not None
    assert end is not None
    assert start < end


def test_add_years_on_a_leap_day() -> None:
    start, _ = validate({**GOOD, "created_at_start": "2024-02-29"})[1:]
    assert start is not None
    assert add_years(start, 2).date().isoformat() == "2026-03-01"


def test_with_page_replaces_or_appends() -> None:
    assert _with_page("", 2) == "page=2"
    assert _with_page("a=1&page=5&b=%2B1", 2) == "a=1&page=2&b=%2B1"
    assert _with_page("a=1&b=2", 3) == "a=1&b=2&page=3"
    assert _with_page("page=1&page=4&x", 2) == "page=2&x"


def test_xml_types_nils_arrays_and_wrappers() -> None:
    record = {
        "id": 7,
        "first_name": "Nancy & <Ned>",
        "toll_free": False,
        "revenue": 5.0,
        "sid": None,
        "created_at": "2012-05-03T15:56:01Z",
        "greeting": {"message": "Hi", "voice_gender": "Female"},
        "target_group": {},
        "timers": [{"timer": {"id": 1, "seconds": 0}}],
        "target_ids": [1, 2],
        "downstream_call_uuids": [],
    }
    body = to_xml("affiliate", record)
    assert body.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<affiliate>\n  <id type="integer">7</id>\n'
    )
    doc = parse_xml(body)
    assert doc.findtext("first-name") == "Nancy & <Ned>"
    assert doc.find("toll-free").get("type") == "boolean"  # type: ignore[union-attr]
    assert doc.findtext("toll-free") == "false"
    assert doc.find("revenue").get("type") == "float"  # type: ignore[union-attr]
    assert doc.findtext("revenue") == "5.0"
    assert doc.find("sid").get("nil") == "true"  # type: ignore[union-attr]
    assert doc.find("created-at").get("type") == "datetime"  # type: ignore[union-attr]
    assert doc.findtext("greeting/voice-gender") == "Female"
    assert doc.find("target-group") is not None
    assert [t.tag for t in doc.find("timers")] == ["timer"]  # type: ignore[union-attr]
    assert doc.findtext("timers/timer/seconds") == "0"
    assert [t.text for t in doc.find("target-ids")] == ["1", "2"]  # type: ignore[union-attr]
    assert [t.tag for t in doc.find("target-ids")] == ["target-id", "target-id"]  # type: ignore[union-attr]
    assert doc.find("downstream-call-uuids").get("type") == "array"  # type: ignore[union-attr]


def test_xml_list_root() -> None:
    doc = parse_xml(
        to_xml("affiliates", [{"affiliate": {"afid": "0002"}}, {"affiliate": {"afid": "0003"}}])
    )
    assert doc.tag == "affiliates"
    assert doc.get("type") == "array"
    assert [a.findtext("afid") for a in doc] == ["0002", "0003"]


@pytest.mark.parametrize(
    ("name", "tag"),
    [("first_name", "first-name"), ("utm campaign", "utm-campaign"), ("1abc", "_1abc")],
)
def test_dasherize(name: str, tag: str) -> None:
    assert dasherize(name) == tag


@pytest.mark.parametrize(
    ("plural", "one"),
    [
        ("companies", "company"),
        ("caps", "cap"),
        ("business_hours", "business_hour"),
        ("keys_pressed", "keys_pressed"),
    ],
)
def test_singular(plural: str, one: str) -> None:
    assert singular(plural) == one


def _dump(data: object) -> bytes:
    return msgspec.json.encode(data, enc_hook=lambda o: str(o))


def test_seed_is_deterministic() -> None:
    first, second = seed(), seed()
    assert _dump(first.companies) == _dump(second.companies)
    for company_id in first.by_company:
        a, b = first.by_company[company_id], second.by_company[company_id]
        assert _dump([c.v2 for c in a.calls]) == _dump([c.v2 for c in b.calls])
        assert _dump(a.targets) == _dump(b.targets)
        assert _dump(a.numbers) == _dump(b.numbers)


def test_seeded_data_hangs_together() -> None:
    data = seed()
    c1 = data.by_company[1]
    assert len(c1.calls) == 60
    assert len({c.created_at.date() for c in c1.calls}) == 5
    assert len(c1.numbers) == 30
    for company in data.by_company.values():
        cids = {c["cid"] for c in company.campaigns}
        afids = {a["afid"] for a in company.affiliates}
        assert {n["cid"] for n in company.numbers} <= cids
        assert {n["afid"] for n in company.numbers} <= afids
        targets = {t["id"] for t in company.targets}
        assert all(set(g["target_ids"]) <= targets for g in company.target_groups)
        for call in company.calls:
            assert call.cid in cids
            assert call.v2["target_id"] is None or call.v2["target_id"] in targets
    for kind in ("affiliates", "targets", "campaigns", "numbers", "contacts", "target_groups"):
        ids = [r["id"] for c in data.by_company.values() for r in getattr(c, kind)]
        assert len(ids) == len(set(ids)), kind
