"""What a create or update does to an affiliate, target, target group, contact or static
caller number record: defaults from the reference, nested caps, business hours, tags and
target membership."""

from __future__ import annotations

from typing import Any

from gateway.sandbox.api.attrs import (
    Invalid,
    apply_caps,
    apply_tag_list,
    assign,
    coerce,
    ids_for,
    list_of_objects,
    require,
    utcnow,
)
from gateway.sandbox.api.context import Ctx, phone
from gateway.sandbox.api.data import Record, business_hours, caps, iso_ms, iso_s
from gateway.sandbox.api.reads import find

_AFFILIATE = {"afid": "str", "first_name": "str?", "last_name": "str?", "company_name": "str?"}


def build_affiliate(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    require(attrs, "afid")
    if find(ctx.company.affiliates, "afid", str(attrs["afid"])):
        raise Invalid("afid has already been taken")
    now = iso_s(utcnow())
    record: Record = {"id": ctx.data.next_id(), "afid": None, "first_name": None}
    record.update({"last_name": None, "company_name": None, "updated_at": now, "created_at": now})
    assign(record, attrs, _AFFILIATE)
    return record


def apply_affiliate(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "afid" in attrs:
        other = find(ctx.company.affiliates, "afid", str(attrs["afid"]))
        if other is not None and other is not record:
            raise Invalid("afid has already been taken")
    assign(record, attrs, _AFFILIATE)


_TARGET = {
    "name": "str?",
    "number": "str",
    "sip_username": "str?",
    "sip_password": "str?",
    "tid": "str?",
    "priority": "int",
    "weight": "int",
    "timeout_seconds": "int",
    "inband_signals": "bool",
    "timer_offset": "int",
    "send_digits": "str?",
    "concurrency_cap": "int?",
    "paused": "bool",
    "time_zone": "str",
}


def _business_hours(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "business_hours_attributes" not in attrs:
        return
    for entry in list_of_objects("business_hours_attributes", attrs["business_hours_attributes"]):
        existing = next((b for b in record["business_hours"] if b["id"] == entry.get("id")), None)
        if existing is None:
            require(entry, "day_of_week")
            candidate = business_hours(ids_for(ctx), record["id"], utcnow())[0]
        else:
            candidate = dict(existing)
        assign(
            candidate,
            {("invert" if k == "inverted" else k): v for k, v in entry.items()},
            {
                "day_of_week": "int",
                "work_day": "bool",
                "time_open": "int",
                "time_close": "int",
                "invert": "bool",
            },
        )
        _check_hours(candidate)  # before anything is stored: a refused write changes nothing
        candidate["updated_at"] = iso_ms(utcnow())
        if existing is None:
            record["business_hours"].append(candidate)
        else:
            existing.update(candidate)


def _check_hours(hours: Record) -> None:
    """Refuse what Retreaver's validations refuse: a day outside 0-6 (Sunday first), a
    time outside 0000-2400 or with minutes past 59."""
    if not 0 <= hours["day_of_week"] <= 6:
        raise Invalid("business_hours.day_of_week must be between 0 and 6")
    for name in ("time_open", "time_close"):
        value = hours[name]
        if not 0 <= value <= 2400 or value % 100 > 59:
            raise Invalid(f"business_hours.{name} must be a time between 0000 and 2400")


def build_target(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    require(attrs, "number")
    now = utcnow()
    target_id = ctx.data.next_id()
    record: Record = {
        "id": target_id,
        "number": None,
        "sip_username": None,
        "sip_password": None,
        "cid_number_id": None,
        "obfuscate_cid": False,
        "created_at": iso_ms(now),
        "updated_at": iso_ms(now),
        "object_key": f"{target_id:064x}",
        "tid": None,
        "priority": 1,
        "weight": 1,
        "timeout_seconds": 30,
        "timer_offset": 0,
        "send_digits": None,
        "concurrency_cap": None,
        "calls_in_progress": 0,
        "inband_signals": False,
        "time_zone": "UTC",
        "paused": False,
        "paused_at": None,
        "name": None,
        "caps": caps(ids_for(ctx)),
        "business_hours": [] if "business_hours_attributes" in attrs else None,
        "tag_values": [],
    }
    if record["business_hours"] is None:
        record["business_hours"] = business_hours(ids_for(ctx), target_id, now)
    apply_target(ctx, record, attrs)
    return record


def apply_target(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    was_paused = record["paused"]
    assign(record, attrs, _TARGET)
    if record["paused"] and not was_paused:
        record["paused_at"] = iso_ms(utcnow())
    elif not record["paused"]:
        record["paused_at"] = None
    apply_caps(record, attrs)
    _business_hours(ctx, record, attrs)
    apply_tag_list(ctx, record, attrs)


def _contact_numbers(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "contact_numbers_attributes" not in attrs:
        return
    for entry in list_of_objects("contact_numbers_attributes", attrs["contact_numbers_attributes"]):
        existing = next((n for n in record["contact_numbers"] if n["id"] == entry.get("id")), None)
        if existing is None:
            require(entry, "number")
            existing = {"number": None, "description": None, "id": ctx.data.next_id()}
            record["contact_numbers"].append(existing)
        if "number" in entry:
            existing["number"] = phone(str(entry["number"]))
        if "description" in entry:
            existing["description"] = coerce("description", entry["description"], "str?")


def build_contact(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    require(attrs, "contact_numbers_attributes")
    record: Record = {"id": ctx.data.next_id(), "contact_numbers": [], "tag_values": []}
    apply_contact(ctx, record, attrs)
    return record


def apply_contact(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    _contact_numbers(ctx, record, attrs)
    apply_tag_list(ctx, record, attrs)


def build_static(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    require(attrs, "number")
    return {
        "id": ctx.data.next_id(),
        "number": phone(str(attrs["number"])),
        "created_at": iso_ms(utcnow()),
    }


_GROUP = {
    "name": "str",
    "priority": "int?",
    "weight": "int?",
    "concurrency_cap": "int?",
    "behavior": "int",
}


def _target_ids(ctx: Ctx, name: str, value: Any) -> list[int]:
    if not isinstance(value, list):
        raise Invalid(f"{name} must be an array of target ids")
    ids = [coerce(name, v, "int") for v in value]
    known = {t["id"] for t in ctx.company.targets}
    missing = [i for i in ids if i not in known]
    if missing:
        raise Invalid(f"{name}: no target with id {missing[0]}")
    return ids


def build_group(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    require(attrs, "name")
    record: Record = {
        "id": ctx.data.next_id(),
        "name": None,
        "target_ids": [],
        "concurrency_cap": None,
        "calls_in_progress": 0,
        "behavior": 1,
        "priority": None,
        "weight": None,
        "caps": caps(ids_for(ctx)),
    }
    apply_group(ctx, record, attrs)
    return record


def apply_group(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    assign(record, attrs, _GROUP)
    if record["behavior"] not in (1, 2):
        raise Invalid("behavior must be 1 (dial separately) or 2 (simuldial)")
    if "target_ids" in attrs:
        record["target_ids"] = _target_ids(ctx, "target_ids", attrs["target_ids"])
    if "add_targets_by_id" in attrs:
        added = _target_ids(ctx, "add_targets_by_id", attrs["add_targets_by_id"])
        record["target_ids"] += [i for i in added if i not in record["target_ids"]]
    if "remove_targets_by_id" in attrs:
        removed = set(_target_ids(ctx, "remove_targets_by_id", attrs["remove_targets_by_id"]))
        record["target_ids"] = [i for i in record["target_ids"] if i not in removed]
    apply_caps(record, attrs)
