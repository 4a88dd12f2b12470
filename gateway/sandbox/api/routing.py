"""Campaigns, numbers and number pools: the records whose greeting, timers and menu
options decide where a call goes. A number inherits its campaign's settings
(``"inherited": true``) unless the request overrides them."""

from __future__ import annotations

from typing import Any

from gateway.sandbox.api.attrs import (
    Invalid,
    assign,
    coerce,
    list_of_objects,
    require,
    utcnow,
)
from gateway.sandbox.api.builders import build_affiliate
from gateway.sandbox.api.context import Ctx
from gateway.sandbox.api.data import Record, inherited_settings, iso_s
from gateway.sandbox.api.reads import find

_CAMPAIGN = {
    "cid": "str",
    "name": "str?",
    "dedupe_seconds": "int",
    "affiliate_can_pull_number": "bool",
    "record_calls": "bool",
}


def _timers(ctx: Ctx, attrs: dict[str, Any], inherited: bool | None) -> list[dict[str, Any]]:
    found = []
    for entry in list_of_objects("timers_attributes", attrs["timers_attributes"]):
        require(entry, "seconds", "url")
        timer: Record = {
            "id": ctx.data.next_id(),
            "seconds": coerce("seconds", entry["seconds"], "int"),
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
    for entry in list_of_objects(name, attrs[name]):
        require(entry, "option")
        option: Record = {
            "id": ctx.data.next_id(),
            "option": str(entry["option"]),
            "target_cid": coerce("target_cid", entry.get("target_cid"), "str?"),
            "target_number": coerce("target_number", entry.get("target_number"), "str?"),
        }
        if inherited is not None:
            option["inherited"] = inherited
        found.append({"menu_option": option})
    return found


def _has_menu(attrs: dict[str, Any]) -> bool:
    return "menu_options_attributes" in attrs or "menu_option_attributes" in attrs


def _apply_routing(ctx: Ctx, record: Record, attrs: dict[str, Any], nested: bool | None) -> None:
    """Greeting, timers and menu options, shared by campaigns and numbers."""
    destroy = coerce("destroy_nested", attrs.get("destroy_nested", False), "bool")
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


def build_campaign(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    cid = str(attrs.get("cid") or f"{ctx.data.next_id():08x}"[-8:])
    if find(ctx.company.campaigns, "cid", cid):
        raise Invalid("cid has already been taken")
    if not _has_menu(attrs):
        raise Invalid("menu_options_attributes must include an option for '1'")
    now = iso_s(utcnow())
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
    apply_campaign(ctx, record, {**attrs, "cid": cid, "destroy_nested": True})
    if not any(m["menu_option"]["option"] == "1" for m in record["menu_options"]):
        raise Invalid("menu_options_attributes must include an option for '1'")
    return record


def apply_campaign(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "cid" in attrs:
        other = find(ctx.company.campaigns, "cid", str(attrs["cid"]))
        if other is not None and other is not record:
            raise Invalid("cid has already been taken")
    assign(record, attrs, _CAMPAIGN)
    _apply_routing(ctx, record, attrs, None)


def campaign_by_cid(ctx: Ctx, cid: str) -> Record:
    campaign = find(ctx.company.campaigns, "cid", cid)
    if campaign is None:
        raise Invalid(f"cid {cid} is not a campaign of this company")
    return campaign


def build_number(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    require(attrs, "afid", "cid")
    campaign = campaign_by_cid(ctx, str(attrs["cid"]))
    afid = str(attrs["afid"])
    if find(ctx.company.affiliates, "afid", afid) is None:  # "we will create a new affiliate"
        ctx.company.affiliates.append(build_affiliate(ctx, {"afid": afid}))
    kind = str(attrs.get("type") or "Toll-free")
    if kind not in ("Toll-free", "Local"):
        raise Invalid("type must be Toll-free or Local")
    serial = ctx.data.next_id()
    digits = f"{serial % 10_000_000:07d}"
    now = iso_s(utcnow())
    record: Record = {
        "id": serial,
        "number": f"+1800{digits}" if kind == "Toll-free" else f"+1647{digits}",
        "toll_free": kind == "Toll-free",
        "updated_at": now,
        "created_at": now,
        "sid": coerce("sid", attrs.get("sid"), "str?"),
        "afid": afid,
        "cid": campaign["cid"],
        **inherited_settings(campaign),
    }
    _apply_routing(ctx, record, attrs, False)
    return record


def apply_number(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "cid" in attrs:
        record["cid"] = campaign_by_cid(ctx, str(attrs["cid"]))["cid"]
    if "afid" in attrs:
        require(attrs, "afid")
        if find(ctx.company.affiliates, "afid", str(attrs["afid"])) is None:
            ctx.company.affiliates.append(build_affiliate(ctx, {"afid": str(attrs["afid"])}))
        record["afid"] = str(attrs["afid"])
    assign(record, attrs, {"sid": "str?"})
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


def build_pool(ctx: Ctx, attrs: dict[str, Any]) -> Record:
    require(attrs, "cid")
    now = iso_s(utcnow())
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
    apply_pool(ctx, record, attrs)
    return record


def apply_pool(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "cid" in attrs:
        record["cid"] = campaign_by_cid(ctx, str(attrs["cid"]))["cid"]
    if "afid" in attrs:
        afid = coerce("afid", attrs["afid"], "str?")
        if afid is not None and find(ctx.company.affiliates, "afid", afid) is None:
            raise Invalid(f"afid {afid} is not an affiliate of this company")
        record["afid"] = afid
    assign(record, attrs, _POOL)
    record["updated_at"] = iso_s(utcnow())
