"""Write routes, minimally faithful: check credentials, take the documented wrapped JSON
body (``{"affiliate": {...}}``), change the in-memory data, answer the documented shape.

Creates answer 201 with the object; updates 200 with the object; deletes 204 (Rails'
``respond_with`` on destroy); ``reset_cap`` answers 200 with the object. A missing
wrapper or malformed JSON is 400; a missing required attribute, a duplicate customer id,
a dangling reference or a delete the reference forbids (an affiliate or campaign that
still has numbers, a contact's last number) is 422. Attributes the reference does not
list for a resource are ignored, as Rails' strong parameters would.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.responses import Response

from gateway.sandbox.core_api.context import Ctx, Handler, phone
from gateway.sandbox.core_api.data import (
    ApiKey,
    CompanyData,
    Record,
    business_hours,
    caps,
    iso_ms,
    iso_s,
    tag_values,
)
from gateway.sandbox.core_api.reads import (
    AFFILIATES,
    CAMPAIGNS,
    CONTACTS,
    NUMBER_POOLS,
    NUMBERS,
    STATIC_CALLER_NUMBERS,
    TARGET_GROUPS,
    TARGETS,
    Resource,
    contact_by_number,
    find,
)
from gateway.sandbox.core_api.render import render


class Invalid(ValueError):
    """An attribute the sandbox will not store: answered 422."""


def _now() -> datetime:
    return datetime.now(UTC)


def _coerce(name: str, value: Any, kind: str) -> Any:
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None or value == "":
        if nullable:
            return None
        raise Invalid(f"{name} can't be blank")
    if kind == "str":
        return str(value)
    if kind == "int":
        if isinstance(value, bool):
            raise Invalid(f"{name} must be an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise Invalid(f"{name} must be an integer") from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1"):
            return True
        if str(value).lower() in ("false", "0"):
            return False
        raise Invalid(f"{name} must be true or false")
    raise AssertionError(kind)


def _assign(record: Record, attrs: dict[str, Any], spec: dict[str, str]) -> None:
    for name, kind in spec.items():
        if name in attrs:
            record[name] = _coerce(name, attrs[name], kind)


def _require(attrs: dict[str, Any], *names: str) -> None:
    for name in names:
        if attrs.get(name) in (None, ""):
            raise Invalid(f"{name} can't be blank")


def _caps(record: Record, attrs: dict[str, Any]) -> None:
    for kind in ("hard", "hourly", "daily", "monthly"):
        nested = attrs.get(f"{kind}_cap_attributes")
        if nested is None:
            continue
        if not isinstance(nested, dict) or "cap" not in nested:
            raise Invalid(f"{kind}_cap_attributes must be an object with a cap")
        cap = next(c for c in record["caps"] if c["type"].lower() == kind)
        cap["cap"] = _coerce("cap", nested["cap"], "int?")


def _tag_list(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "tag_list" in attrs:
        record["tag_values"] = tag_values(_ids(ctx), str(attrs["tag_list"] or ""))


def _ids(ctx: Ctx) -> Iterator[int]:
    return iter(ctx.data.next_id, None)


def _list_of_objects(name: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise Invalid(f"{name} must be an array of objects")
    return value


# ---------------------------------------------------------------- resource builders
Build = Callable[[Ctx, dict[str, Any]], Record]
Apply = Callable[[Ctx, Record, dict[str, Any]], None]

_AFFILIATE = {"afid": "str", "first_name": "str?", "last_name": "str?", "company_name": "str?"}


def _build_affiliate(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    _require(attrs, "afid")
    if find(ctx.company.affiliates, "afid", str(attrs["afid"])):
        raise Invalid("afid has already been taken")
    now = iso_s(_now())
    record: Record = {"id": ctx.data.next_id(), "afid": None, "first_name": None}
    record.update({"last_name": None, "company_name": None, "updated_at": now, "created_at": now})
    _assign(record, attrs, _AFFILIATE)
    return record


def _apply_affiliate(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "afid" in attrs:
        other = find(ctx.company.affiliates, "afid", str(attrs["afid"]))
        if other is not None and other is not record:
            raise Invalid("afid has already been taken")
    _assign(record, attrs, _AFFILIATE)


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
    for entry in _list_of_objects("business_hours_attributes", attrs["business_hours_attributes"]):
        existing = next((b for b in record["business_hours"] if b["id"] == entry.get("id")), None)
        if existing is None:
            _require(entry, "day_of_week")
            existing = business_hours(_ids(ctx), record["id"], _now())[0]
            record["business_hours"].append(existing)
        _assign(
            existing,
            {("invert" if k == "inverted" else k): v for k, v in entry.items()},
            {
                "day_of_week": "int",
                "work_day": "bool",
                "time_open": "int",
                "time_close": "int",
                "invert": "bool",
            },
        )
        existing["updated_at"] = iso_ms(_now())


def _build_target(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    _require(attrs, "number")
    now = _now()
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
        "caps": caps(_ids(ctx)),
        "business_hours": [] if "business_hours_attributes" in attrs else None,
        "tag_values": [],
    }
    if record["business_hours"] is None:
        record["business_hours"] = business_hours(_ids(ctx), target_id, now)
    _apply_target(ctx, record, attrs)
    return record


def _apply_target(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    was_paused = record["paused"]
    _assign(record, attrs, _TARGET)
    if record["paused"] and not was_paused:
        record["paused_at"] = iso_ms(_now())
    elif not record["paused"]:
        record["paused_at"] = None
    _caps(record, attrs)
    _business_hours(ctx, record, attrs)
    _tag_list(ctx, record, attrs)


_CAMPAIGN = {
    "cid": "str",
    "name": "str?",
    "dedupe_seconds": "int",
    "affiliate_can_pull_number": "bool",
    "record_calls": "bool",
}


def _timers(ctx: Ctx, attrs: dict[str, Any], inherited: bool | None) -> list[dict[str, Any]]:
    found = []
    for entry in _list_of_objects("timers_attributes", attrs["timers_attributes"]):
        _require(entry, "seconds", "url")
        timer: Record = {
            "id": ctx.data.next_id(),
            "seconds": _coerce("seconds", entry["seconds"], "int"),
            "url": str(entry["url"]),
        }
        if inherited is not None:
            timer["inherited"] = inherited
        found.append(timer)
    return found


def _menu_options(ctx: Ctx, attrs: dict[str, Any], inherited: bool | None) -> list[Record]:
    found = []
    name = (
        "menu_options_attributes"
        if "menu_options_attributes" in attrs
        else "menu_option_attributes"
    )
    for entry in _list_of_objects(name, attrs[name]):
        _require(entry, "option")
        option: Record = {
            "id": ctx.data.next_id(),
            "option": str(entry["option"]),
            "target_cid": _coerce("target_cid", entry.get("target_cid"), "str?"),
            "target_number": _coerce("target_number", entry.get("target_number"), "str?"),
        }
        if inherited is not None:
            option["inherited"] = inherited
        found.append({"menu_option": option})
    return found


def _has_menu(attrs: dict[str, Any]) -> bool:
    return "menu_options_attributes" in attrs or "menu_option_attributes" in attrs


def _apply_routing(ctx: Ctx, record: Record, attrs: dict[str, Any], nested: bool | None) -> None:
    """Greeting, timers and menu options, shared by campaigns and numbers."""
    destroy = _coerce("destroy_nested", attrs.get("destroy_nested", False), "bool")
    if "message" in attrs or "voice_gender" in attrs:
        greeting = {k: v for k, v in record["greeting"].items() if not k.startswith("audio_")}
        greeting["message"] = str(attrs.get("message", greeting.get("message")) or "")
        greeting["voice_gender"] = str(attrs.get("voice_gender", greeting.get("voice_gender")))
        if nested is not None:
            greeting["inherited"] = False
        record["greeting"] = greeting
    if "timers_attributes" in attrs:
        timers = _timers(ctx, attrs, nested)
        wrapped = [{"timer": t} for t in timers] if nested is None else timers
        record["timers"] = wrapped if destroy or nested is not None else record["timers"] + wrapped
    if _has_menu(attrs):
        options = _menu_options(ctx, attrs, nested)
        keep = destroy or nested is not None
        record["menu_options"] = options if keep else record["menu_options"] + options


def _build_campaign(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    cid = str(attrs.get("cid") or f"{ctx.data.next_id():08x}"[-8:])
    if find(ctx.company.campaigns, "cid", cid):
        raise Invalid("cid has already been taken")
    if not _has_menu(attrs):
        raise Invalid("menu_options_attributes must include an option for '1'")
    now = iso_s(_now())
    record: Record = {
        "id": ctx.data.next_id(),
        "cid": cid,
        "name": None,
        "updated_at": now,
        "created_at": now,
        "record_calls": True,
        "record_seconds": 3600,
        "dedupe_seconds": 0,
        "affiliate_can_pull_number": False,
        "show_key": f"{ctx.data.next_id():032x}",
        "greeting": {"message": None, "voice_gender": "Male"},
        "timers": [],
        "menu_options": [],
    }
    _apply_campaign(ctx, record, {**attrs, "cid": cid, "destroy_nested": True})
    if not any(m["menu_option"]["option"] == "1" for m in record["menu_options"]):
        raise Invalid("menu_options_attributes must include an option for '1'")
    return record


def _apply_campaign(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "cid" in attrs:
        other = find(ctx.company.campaigns, "cid", str(attrs["cid"]))
        if other is not None and other is not record:
            raise Invalid("cid has already been taken")
    _assign(record, attrs, _CAMPAIGN)
    _apply_routing(ctx, record, attrs, None)


def _campaign(ctx: Ctx, cid: str) -> Record:
    campaign = find(ctx.company.campaigns, "cid", cid)
    if campaign is None:
        raise Invalid(f"cid {cid} is not a campaign of this company")
    return campaign


def _build_number(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    _require(attrs, "afid", "cid")
    campaign = _campaign(ctx, str(attrs["cid"]))
    afid = str(attrs["afid"])
    if find(ctx.company.affiliates, "afid", afid) is None:  # "we will create a new affiliate"
        ctx.company.affiliates.append(_build_affiliate(ctx, {"afid": afid}))
    kind = str(attrs.get("type") or "Toll-free")
    if kind not in ("Toll-free", "Local"):
        raise Invalid("type must be Toll-free or Local")
    serial = ctx.data.next_id()
    digits = f"{serial % 10_000_000:07d}"
    now = iso_s(_now())
    record: Record = {
        "id": serial,
        "number": f"+1800{digits}" if kind == "Toll-free" else f"+1647{digits}",
        "toll_free": kind == "Toll-free",
        "updated_at": now,
        "created_at": now,
        "sid": _coerce("sid", attrs.get("sid"), "str?"),
        "afid": afid,
        "cid": campaign["cid"],
        "uses_campaign_settings": True,
        "greeting": {**campaign["greeting"], "inherited": True},
        "timers": [{**t["timer"], "inherited": True} for t in campaign["timers"]],
        "menu_options": [
            {"menu_option": {**m["menu_option"], "inherited": True}}
            for m in campaign["menu_options"]
        ],
    }
    _apply_routing(ctx, record, attrs, False)
    return record


def _apply_number(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "cid" in attrs:
        record["cid"] = _campaign(ctx, str(attrs["cid"]))["cid"]
    if "afid" in attrs:
        _require(attrs, "afid")
        if find(ctx.company.affiliates, "afid", str(attrs["afid"])) is None:
            ctx.company.affiliates.append(_build_affiliate(ctx, {"afid": str(attrs["afid"])}))
        record["afid"] = str(attrs["afid"])
    _assign(record, attrs, {"sid": "str?"})
    _apply_routing(ctx, record, attrs, False)


_POOL = {
    "type": "str",
    "country": "str",
    "max_pool_size": "int",
    "buffer_seconds": "int",
    "hide_embedded_access": "bool",
    "google_analytics": "bool",
    "reserve_size": "int",
}


def _build_pool(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    _require(attrs, "cid")
    now = iso_s(_now())
    record: Record = {
        "id": ctx.data.next_id(),
        "numbers_count": 0,
        "country": "US",
        "max_pool_size": 10,
        "buffer_seconds": 0,
        "updated_at": now,
        "created_at": now,
        "hide_embedded_access": False,
        "google_analytics": False,
        "afid": None,
        "cid": None,
        "type": "Toll-free",
        "reserve_size": 1,
        "google_analytics_paths": [
            {"name": "Network timer (always)", "path": f"/callpixels/{ctx.data.next_id():032x}"},
            {"name": "Network timer (connect)", "path": f"/callpixels/{ctx.data.next_id():032x}"},
        ],
    }
    _apply_pool(ctx, record, attrs)
    return record


def _apply_pool(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "cid" in attrs:
        record["cid"] = _campaign(ctx, str(attrs["cid"]))["cid"]
    if "afid" in attrs:
        afid = _coerce("afid", attrs["afid"], "str?")
        if afid is not None and find(ctx.company.affiliates, "afid", afid) is None:
            raise Invalid(f"afid {afid} is not an affiliate of this company")
        record["afid"] = afid
    _assign(record, attrs, _POOL)
    record["updated_at"] = iso_s(_now())


def _contact_numbers(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "contact_numbers_attributes" not in attrs:
        return
    for entry in _list_of_objects(
        "contact_numbers_attributes", attrs["contact_numbers_attributes"]
    ):
        existing = next((n for n in record["contact_numbers"] if n["id"] == entry.get("id")), None)
        if existing is None:
            _require(entry, "number")
            existing = {"number": None, "description": None, "id": ctx.data.next_id()}
            record["contact_numbers"].append(existing)
        if "number" in entry:
            existing["number"] = phone(str(entry["number"]))
        if "description" in entry:
            existing["description"] = _coerce("description", entry["description"], "str?")


def _build_contact(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    _require(attrs, "contact_numbers_attributes")
    record: Record = {"id": ctx.data.next_id(), "contact_numbers": [], "tag_values": []}
    _apply_contact(ctx, record, attrs)
    return record


def _apply_contact(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    _contact_numbers(ctx, record, attrs)
    _tag_list(ctx, record, attrs)


def _build_static(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    _require(attrs, "number")
    return {
        "id": ctx.data.next_id(),
        "number": phone(str(attrs["number"])),
        "created_at": iso_ms(_now()),
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
    ids = [_coerce(name, v, "int") for v in value]
    known = {t["id"] for t in ctx.company.targets}
    missing = [i for i in ids if i not in known]
    if missing:
        raise Invalid(f"{name}: no target with id {missing[0]}")
    return ids


def _build_group(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    _require(attrs, "name")
    record: Record = {
        "id": ctx.data.next_id(),
        "name": None,
        "target_ids": [],
        "concurrency_cap": None,
        "calls_in_progress": 0,
        "behavior": 1,
        "priority": None,
        "weight": None,
        "caps": caps(_ids(ctx)),
    }
    _apply_group(ctx, record, attrs)
    return record


def _apply_group(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    _assign(record, attrs, _GROUP)
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
    _caps(record, attrs)


_COMPANY = {"name": "str", "default_click_url": "str?", "default_sale_url": "str?"}


# ---------------------------------------------------------------- generic handlers
def _touch(record: Record) -> None:
    if "updated_at" in record:
        stamp = record["updated_at"]
        record["updated_at"] = iso_ms(_now()) if "." in stamp else iso_s(_now())


def create(resource: Resource, build: Build) -> Handler:
    async def handler(ctx: Ctx) -> Response:
        attrs = await ctx.body(resource.singular)
        if isinstance(attrs, Response):
            return attrs
        try:
            record = build(ctx, attrs)
        except Invalid as exc:
            return ctx.error(422, str(exc))
        resource.records(ctx).append(record)
        return ctx.one(resource.singular, record, 201)

    handler.__name__ = f"create_{resource.singular}"
    return handler


def _lookup(ctx: Ctx, resource: Resource, field: str) -> Record | None:
    return find(resource.records(ctx), field, ctx.path("key"))


def update(resource: Resource, apply: Apply, field: str = "id") -> Handler:
    async def handler(ctx: Ctx) -> Response:
        record = _lookup(ctx, resource, field)
        if record is None:
            return ctx.not_found()
        attrs = await ctx.body(resource.singular)
        if isinstance(attrs, Response):
            return attrs
        changed = copy.deepcopy(record)  # a 422 leaves the record as it was
        try:
            apply(ctx, changed, attrs)
        except Invalid as exc:
            return ctx.error(422, str(exc))
        record.update(changed)
        _touch(record)
        return ctx.one(resource.singular, record)

    handler.__name__ = f"update_{resource.singular}_by_{field}"
    return handler


Guard = Callable[[Ctx, Record], str | None]


def delete(resource: Resource, field: str = "id", guard: Guard | None = None) -> Handler:
    async def handler(ctx: Ctx) -> Response:
        record = _lookup(ctx, resource, field)
        if record is None:
            return ctx.not_found()
        problem = guard(ctx, record) if guard else None
        if problem:
            return ctx.error(422, problem)
        resource.records(ctx).remove(record)
        return Response(status_code=204)

    handler.__name__ = f"delete_{resource.singular}_by_{field}"
    return handler


def _numbers_of(attr: str, what: str) -> Guard:
    def guard(ctx: Ctx, record: Record) -> str | None:
        if any(n[attr] == record[attr] for n in ctx.company.numbers):
            return f"You must delete the Numbers of this {what} first."
        return None

    return guard


def reset_cap(resource: Resource) -> Handler:
    async def handler(ctx: Ctx) -> Response:
        record = _lookup(ctx, resource, "id")
        if record is None:
            return ctx.not_found()
        for cap in record["caps"]:
            if cap["type"] == "Hard":
                cap["filled"] = 0
        if resource is TARGET_GROUPS:
            for target in ctx.company.targets:
                if target["id"] in record["target_ids"]:
                    next(c for c in target["caps"] if c["type"] == "Hard")["filled"] = 0
        return ctx.one(resource.singular, record)

    handler.__name__ = f"reset_{resource.singular}_cap"
    return handler


# ---------------------------------------------------------------- companies
async def create_company(ctx: Ctx) -> Response:
    attrs = await ctx.body("company")
    if isinstance(attrs, Response):
        return attrs
    try:
        _require(attrs, "name")
        now = iso_s(_now())
        record: Record = {"id": ctx.data.next_id(), "name": None, "default_click_url": None}
        record.update({"default_sale_url": None, "created_at": now, "updated_at": now})
        _assign(record, attrs, _COMPANY)
    except Invalid as exc:
        return ctx.error(422, str(exc))
    ctx.data.companies[record["id"]] = record
    ctx.data.by_company[record["id"]] = CompanyData()
    for name, key in list(ctx.data.keys.items()):
        if key is ctx.key:
            ctx.data.keys[name] = ApiKey(
                companies=(*key.companies, record["id"]), active=key.active
            )
    return ctx.one("company", record, 201)


def _company(ctx: Ctx) -> Record | None:
    raw = ctx.path("key")
    if not raw.isdigit() or int(raw) not in ctx.key.companies:
        return None
    return ctx.data.companies.get(int(raw))


async def update_company(ctx: Ctx) -> Response:
    record = _company(ctx)
    if record is None:
        return ctx.not_found()
    attrs = await ctx.body("company")
    if isinstance(attrs, Response):
        return attrs
    changed = dict(record)
    try:
        _assign(changed, attrs, _COMPANY)
    except Invalid as exc:
        return ctx.error(422, str(exc))
    record.update(changed)
    _touch(record)
    return ctx.one("company", record)


async def delete_company(ctx: Ctx) -> Response:
    record = _company(ctx)
    if record is None:
        return ctx.not_found()
    owned = ctx.data.by_company[record["id"]]
    if owned.numbers or owned.number_pools:
        return ctx.error(422, "You must delete the Numbers and Number Pools of this Company first.")
    del ctx.data.companies[record["id"]]
    del ctx.data.by_company[record["id"]]
    for name, key in list(ctx.data.keys.items()):
        if record["id"] in key.companies:
            rest = tuple(c for c in key.companies if c != record["id"])
            ctx.data.keys[name] = ApiKey(companies=rest, active=key.active)
    return Response(status_code=204)


# ---------------------------------------------------------------- by phone number
async def update_contact_by_number(ctx: Ctx) -> Response:
    found = contact_by_number(ctx, phone(ctx.path("number")))
    if found is None:
        return ctx.not_found()
    attrs = await ctx.body("contact")
    if isinstance(attrs, Response):
        return attrs
    contact = found[0]
    changed = copy.deepcopy(contact)
    try:
        _apply_contact(ctx, changed, attrs)
    except Invalid as exc:
        return ctx.error(422, str(exc))
    contact.update(changed)
    return ctx.one("contact", contact)


async def delete_contact_by_number(ctx: Ctx) -> Response:
    found = contact_by_number(ctx, phone(ctx.path("number")))
    if found is None:
        return ctx.not_found()
    ctx.company.contacts.remove(found[0])
    return Response(status_code=204)


async def update_contact_number(ctx: Ctx) -> Response:
    found = contact_by_number(ctx, phone(ctx.path("number")))
    if found is None:
        return ctx.not_found()
    attrs = await ctx.body("contact_number")
    if isinstance(attrs, Response):
        return attrs
    entry = found[1]
    if "number" in attrs:
        if attrs["number"] in (None, ""):
            return ctx.error(422, "number can't be blank")
        entry["number"] = phone(str(attrs["number"]))
    if "description" in attrs:
        entry["description"] = None if attrs["description"] is None else str(attrs["description"])
    return ctx.one("contact_number", entry)


async def delete_contact_number(ctx: Ctx) -> Response:
    found = contact_by_number(ctx, phone(ctx.path("number")))
    if found is None:
        return ctx.not_found()
    contact, entry = found
    if len(contact["contact_numbers"]) < 2:
        return ctx.error(422, "A Contact must keep at least one Contact Number.")
    contact["contact_numbers"].remove(entry)
    return Response(status_code=204)


# ---------------------------------------------------------------- suppressed numbers
def _suppressed(ctx: Ctx, number: str) -> Record | None:
    return find(ctx.company.suppressed_numbers, "number", number)


async def _suppression_attrs(ctx: Ctx) -> dict[str, Any] | Response:
    """The body is optional; PUT's documented body is flat, POST's is wrapped: take both."""
    raw = await ctx.request.body()
    if not raw.strip():
        return {}
    attrs = await ctx.body("suppressed_number", required=False)
    if isinstance(attrs, Response) or attrs:
        return attrs
    flat = msgspec.json.decode(raw)
    return flat if isinstance(flat, dict) else {}


def _suppress(ctx: Ctx, number: str, attrs: dict[str, Any]) -> Record:
    record = _suppressed(ctx, number)
    if record is None:
        record = {
            "id": ctx.data.next_id(),
            "number": number,
            "created_at": iso_ms(_now()),
            "can_resubscribe": True,
            "company_id": ctx.company_id,
        }
        ctx.company.suppressed_numbers.append(record)
    _apply_suppression(ctx, record, attrs)
    return record


def _apply_suppression(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    _assign(record, attrs, {"can_resubscribe": "bool"})
    cid = attrs.get("campaign_id", attrs.get("cid"))
    if cid not in (None, ""):
        record["cid"] = _campaign(ctx, str(cid))["cid"]


def _flat(ctx: Ctx, record: Record) -> dict[str, Any]:
    """The shape the reference shows for ``POST /suppressed_numbers/{number}``."""
    campaign = find(ctx.company.campaigns, "cid", str(record.get("cid")))
    return {
        "id": record["id"],
        "company_id": record["company_id"],
        "affiliate_id": None,
        "campaign_id": campaign["id"] if campaign else None,
        "number": record["number"],
        "created_at": record["created_at"],
        "updated_at": iso_ms(_now()),
        "can_resubscribe": record["can_resubscribe"],
    }


async def create_suppressed_number(ctx: Ctx) -> Response:
    attrs = await _suppression_attrs(ctx)
    if isinstance(attrs, Response):
        return attrs
    try:
        record = _suppress(ctx, phone(ctx.path("number")), attrs)
    except Invalid as exc:
        return ctx.error(422, str(exc))
    return render(ctx.fmt, "suppressed_number", _flat(ctx, record), status=201)


async def update_suppressed_number(ctx: Ctx) -> Response:
    record = _suppressed(ctx, phone(ctx.path("number")))
    if record is None:
        return ctx.not_found()
    attrs = await _suppression_attrs(ctx)
    if isinstance(attrs, Response):
        return attrs
    try:
        _apply_suppression(ctx, record, attrs)
    except Invalid as exc:
        return ctx.error(422, str(exc))
    return ctx.one("suppressed_number", record)


async def delete_suppressed_number(ctx: Ctx) -> Response:
    record = _suppressed(ctx, phone(ctx.path("number")))
    if record is None:
        return ctx.not_found()
    ctx.company.suppressed_numbers.remove(record)
    return Response(status_code=204)


async def suppress_contact_number(ctx: Ctx) -> Response:
    """The deprecated route: its answer is the wrapped short form the reference shows."""
    attrs = await _suppression_attrs(ctx)
    if isinstance(attrs, Response):
        return attrs
    try:
        record = _suppress(ctx, phone(ctx.path("number")), attrs)
    except Invalid as exc:
        return ctx.error(422, str(exc))
    short = {k: record[k] for k in ("id", "number", "can_resubscribe", "created_at")}
    return ctx.one("suppressed_number", short, 201)


# ---------------------------------------------------------------- the table
WRITES: list[tuple[str, str, Handler]] = [
    ("/affiliates.{fmt}", "POST", create(AFFILIATES, _build_affiliate)),
    ("/affiliates/afid/{key}.{fmt}", "PUT", update(AFFILIATES, _apply_affiliate, "afid")),
    ("/affiliates/{key}.{fmt}", "PUT", update(AFFILIATES, _apply_affiliate)),
    (
        "/affiliates/afid/{key}.{fmt}",
        "DELETE",
        delete(AFFILIATES, "afid", _numbers_of("afid", "Affiliate")),
    ),
    (
        "/affiliates/{key}.{fmt}",
        "DELETE",
        delete(AFFILIATES, "id", _numbers_of("afid", "Affiliate")),
    ),
    ("/targets.{fmt}", "POST", create(TARGETS, _build_target)),
    ("/targets/tid/{key}.{fmt}", "PUT", update(TARGETS, _apply_target, "tid")),
    ("/targets/{key}.{fmt}", "PUT", update(TARGETS, _apply_target)),
    ("/targets/tid/{key}.{fmt}", "DELETE", delete(TARGETS, "tid")),
    ("/targets/{key}.{fmt}", "DELETE", delete(TARGETS)),
    ("/targets/{key}/reset_cap.{fmt}", "POST", reset_cap(TARGETS)),
    ("/campaigns.{fmt}", "POST", create(CAMPAIGNS, _build_campaign)),
    ("/campaigns/cid/{key}.{fmt}", "PUT", update(CAMPAIGNS, _apply_campaign, "cid")),
    ("/campaigns/{key}.{fmt}", "PUT", update(CAMPAIGNS, _apply_campaign)),
    (
        "/campaigns/cid/{key}.{fmt}",
        "DELETE",
        delete(CAMPAIGNS, "cid", _numbers_of("cid", "Campaign")),
    ),
    ("/campaigns/{key}.{fmt}", "DELETE", delete(CAMPAIGNS, "id", _numbers_of("cid", "Campaign"))),
    ("/numbers.{fmt}", "POST", create(NUMBERS, _build_number)),
    ("/numbers/{key}.{fmt}", "PUT", update(NUMBERS, _apply_number)),
    ("/numbers/{key}.{fmt}", "DELETE", delete(NUMBERS)),
    ("/number_pools.{fmt}", "POST", create(NUMBER_POOLS, _build_pool)),
    ("/number_pools/{key}.{fmt}", "PUT", update(NUMBER_POOLS, _apply_pool)),
    ("/number_pools/{key}.{fmt}", "DELETE", delete(NUMBER_POOLS)),
    ("/companies.{fmt}", "POST", create_company),
    ("/companies/{key}.{fmt}", "PUT", update_company),
    ("/companies/{key}.{fmt}", "DELETE", delete_company),
    ("/contacts.{fmt}", "POST", create(CONTACTS, _build_contact)),
    ("/contacts/{key}.{fmt}", "PUT", update(CONTACTS, _apply_contact)),
    ("/contacts/{key}.{fmt}", "DELETE", delete(CONTACTS)),
    ("/contact_numbers/{number}/contact.{fmt}", "PUT", update_contact_by_number),
    ("/contact_numbers/{number}/contact.{fmt}", "DELETE", delete_contact_by_number),
    ("/contact_numbers/{number}/suppressed_number.{fmt}", "POST", suppress_contact_number),
    ("/contact_numbers/{number}/suppressed_number.{fmt}", "DELETE", delete_suppressed_number),
    ("/contact_numbers/{number}.{fmt}", "PUT", update_contact_number),
    ("/contact_numbers/{number}.{fmt}", "DELETE", delete_contact_number),
    ("/suppressed_numbers/{number}.{fmt}", "POST", create_suppressed_number),
    ("/suppressed_numbers/{number}.{fmt}", "PUT", update_suppressed_number),
    ("/suppressed_numbers/{number}.{fmt}", "DELETE", delete_suppressed_number),
    ("/static_caller_numbers.{fmt}", "POST", create(STATIC_CALLER_NUMBERS, _build_static)),
    ("/static_caller_numbers/{key}.{fmt}", "DELETE", delete(STATIC_CALLER_NUMBERS)),
    ("/target_groups.{fmt}", "POST", create(TARGET_GROUPS, _build_group)),
    ("/target_groups/{key}.{fmt}", "PUT", update(TARGET_GROUPS, _apply_group)),
    ("/target_groups/{key}.{fmt}", "DELETE", delete(TARGET_GROUPS)),
    ("/target_groups/{key}/reset_cap.{fmt}", "POST", reset_cap(TARGET_GROUPS)),
]
