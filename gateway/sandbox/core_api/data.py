"""Seeded, deterministic Core API data: the same companies, calls and objects on every start.

Values are modelled on the reference's examples (afids like ``0002``, ``SuperFuntime``,
``Jason Cell`` at +18668987878, callers from Colorado Springs, Toronto and Rockingham).
Every random choice comes from a ``random.Random`` seeded with a fixed string, so two
sandboxes (or a test and the sandbox it talks to) agree on every byte.

Records are plain dicts in the documented attribute order (they are rendered as they are);
calls keep a small internal index (:class:`Call`) for filtering and sorting.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Record = dict[str, Any]


def iso_s(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(ts: datetime) -> str:
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class ApiKey:
    """An api_key's reach: every company it may name, and the one used when it names none."""

    companies: tuple[int, ...]
    active: int


#: The seeded keys (documented in the package docstring).
API_KEYS: dict[str, ApiKey] = {
    "woofwoofwoof": ApiKey(companies=(1, 2), active=1),
    "barkbarkbark": ApiKey(companies=(1,), active=1),
    "meowmeowmeow": ApiKey(companies=(3,), active=3),
}


@dataclass
class Call:
    """One call: its filter/sort facts and its v1 and v2 renderings."""

    uuid: str
    created_at: datetime
    updated_at: datetime
    caller: str
    afid: str | None
    cid: str
    tid: str | None
    sid: str | None
    v1: Record
    v2: Record


@dataclass
class CompanyData:
    affiliates: list[Record] = field(default_factory=list)
    targets: list[Record] = field(default_factory=list)
    campaigns: list[Record] = field(default_factory=list)
    numbers: list[Record] = field(default_factory=list)
    number_pools: list[Record] = field(default_factory=list)
    contacts: list[Record] = field(default_factory=list)
    suppressed_numbers: list[Record] = field(default_factory=list)
    static_caller_numbers: list[Record] = field(default_factory=list)
    target_groups: list[Record] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    #: tag keys the reports index (others report nothing, as the reference explains)
    indexed_tags: tuple[str, ...] = ("utm_campaign", "utm_source", "status")


@dataclass
class CoreData:
    companies: dict[int, Record]
    by_company: dict[int, CompanyData]
    keys: dict[str, ApiKey]
    ids: Iterator[int]

    def next_id(self) -> int:
        """Fresh ids for created objects: above every seeded id, never reused."""
        return next(self.ids)


@dataclass(frozen=True)
class _Sizes:
    calls: int
    affiliates: int
    targets: int
    campaigns: int
    numbers: int
    pools: int
    contacts: int
    suppressed: int
    static: int
    groups: int
    first_day: datetime


_COMPANIES: dict[int, tuple[str, _Sizes]] = {
    # 60 calls over five days: three pages; 30 numbers: two pages.
    1: ("CallPixels", _Sizes(60, 6, 6, 4, 30, 3, 5, 3, 2, 2, datetime(2024, 11, 1, tzinfo=UTC))),
    2: ("Retreaver", _Sizes(4, 2, 2, 1, 3, 1, 2, 1, 1, 1, datetime(2024, 11, 3, tzinfo=UTC))),
    3: ("Acme Leads", _Sizes(7, 3, 3, 2, 4, 1, 2, 2, 1, 1, datetime(2024, 10, 28, tzinfo=UTC))),
}

_CALLERS = (
    ("+17195220377", "80920", "CO", "COLORADO SPRINGS", "US"),
    ("+14166686981", None, "ON", "TORONTO", "CA"),
    ("+13015236555", "28379", "NC", "Rockingham", "US"),
    ("+12125550143", "10001", "NY", "NEW YORK", "US"),
    ("+13125550187", "60601", "IL", "CHICAGO", "US"),
    ("+14155550123", "94103", "CA", "SAN FRANCISCO", "US"),
    ("+16045550111", None, "BC", "VANCOUVER", "CA"),
    ("+15125550199", "78701", "TX", "AUSTIN", "US"),
    ("+13055550176", "33101", "FL", "MIAMI", "US"),
    ("+12065550134", "98101", "WA", "SEATTLE", "US"),
)
_PEOPLE = (
    ("Frank", "Hardy", "Bayport Leads"),
    ("Nancy", "Drew", "Acme"),
    ("Joe", "Hardy", None),
    ("George", "Fayne", "Fayne Media"),
    ("Bess", "Marvin", None),
    ("Ned", "Nickerson", "Emerson Calls"),
)
_TARGETS = (
    ("Jason Cell", "+18668987878", "Eastern Time (US & Canada)"),
    ("Taylor Anderson - Sales - +12263399112", "+12263399112", "Eastern Time (US & Canada)"),
    ("Retreaver Support", "+18668987879", "UTC"),
    ("Pacific Call Center", "+14155550100", "Pacific Time (US & Canada)"),
    ("Chicago Intake", "+13125550100", "Central Time (US & Canada)"),
    ("sip:intake@calls.example.com", "sip:intake@calls.example.com", "UTC"),
)
_CAMPAIGNS = (
    ("111", "SuperFuntime"),
    ("0003", "Retreaver Main - Sales & Support"),
    ("0044", "Auto Insurance Leads"),
    ("0001", "Home Services"),
)
_SIDS = ("superaffiliate", "search", "social", None)
_UTM = ("ret_campaign_123", "ret_campaign_456", "ret_campaign_789")
_SOURCES = ("google", "facebook", "bing")
_CAP_TYPES = ("Daily", "Hard", "Hourly", "Monthly")


def _uuid(rng: random.Random) -> str:
    return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))


def _key(rng: random.Random) -> str:
    return hashlib.sha256(rng.getrandbits(64).to_bytes(8, "big")).hexdigest()


def caps(ids: Iterator[int], hard: int | None = None) -> list[Record]:
    found = [{"id": next(ids), "filled": 0, "cap": None, "type": t} for t in _CAP_TYPES]
    found[1]["cap"] = hard
    return found


def business_hours(ids: Iterator[int], target_id: int, at: datetime) -> list[Record]:
    return [
        {
            "id": next(ids),
            "target_id": target_id,
            "work_day": True,
            "time_open": 0,
            "time_close": 2400,
            "day_of_week": day,
            "invert": False,
            "created_at": iso_ms(at),
            "updated_at": iso_ms(at),
        }
        for day in range(7)
    ]


def tag_values(ids: Iterator[int], tag_list: str) -> list[Record]:
    """``<<<key:value>>>,<<<key:value>>>`` as the reference's tag_values records."""
    found = []
    for part in tag_list.split(","):
        part = part.strip()
        if part.startswith("<<<") and part.endswith(">>>") and ":" in part:
            key, value = part[3:-3].split(":", 1)
            found.append({"key": key, "value": value, "operator": "==", "id": next(ids)})
    return found


class _Seeder:
    def __init__(self) -> None:
        self.ids = itertools.count(1000)  # nested ids (caps, timers, ...), unique sandbox-wide
        self.affiliate_ids = itertools.count(101)
        self.target_ids = itertools.count(6588)
        self.campaign_ids = itertools.count(9872)
        self.number_ids = itertools.count(5)
        self.pool_ids = itertools.count(1)
        self.contact_ids = itertools.count(2)
        self.suppressed_ids = itertools.count(18996945)
        self.static_ids = itertools.count(1234)
        self.group_ids = itertools.count(1)
        self.tag_ids = itertools.count(154060720)

    def company(self, cid: int, name: str) -> Record:
        created = datetime(2012, 4, 15, 5, 44, 10, tzinfo=UTC) + timedelta(days=cid - 1)
        return {
            "id": cid,
            "name": name,
            "default_click_url": "http://callpixels.com/?a=[affiliate_id]&c=[campaign_id]&cp=js&s1=[sub_id]",
            "default_sale_url": "http://callpixels.com/p.ashx?o=[campaign_id]&t=[call_log_id]-[caller_id]-[called_number]-[call_duration]-[call_recording_url]",
            "created_at": iso_s(created),
            "updated_at": iso_s(created + timedelta(days=22, hours=9, minutes=48, seconds=34)),
        }

    def fill(self, company_id: int, sizes: _Sizes) -> CompanyData:
        rng = random.Random(f"retreaver-sandbox-company-{company_id}")
        data = CompanyData()
        epoch = datetime(2012, 5, 3, 15, 56, 1, tzinfo=UTC) + timedelta(days=company_id * 7)
        for i in range(sizes.affiliates):
            first, last, company_name = _PEOPLE[i % len(_PEOPLE)]
            at = epoch + timedelta(days=i, minutes=rng.randrange(600))
            data.affiliates.append(
                {
                    "id": next(self.affiliate_ids),
                    "afid": f"{i + 1:04d}" if company_id == 1 else f"{company_id}{i + 1:03d}",
                    "first_name": first,
                    "last_name": last,
                    "company_name": company_name,
                    "updated_at": iso_s(at + timedelta(days=rng.randrange(30))),
                    "created_at": iso_s(at),
                }
            )
        for i in range(sizes.targets):
            tname, number, zone = _TARGETS[i % len(_TARGETS)]
            tid_ = next(self.target_ids)
            at = datetime(2014, 8, 14, 20, 46, 1, 158000, tzinfo=UTC) + timedelta(days=i * 3)
            data.targets.append(
                {
                    "id": tid_,
                    "number": number,
                    "sip_username": "intake" if number.startswith("sip:") else None,
                    "sip_password": None,
                    "cid_number_id": 10 if i % 2 == 0 else None,
                    "obfuscate_cid": False,
                    "created_at": iso_ms(at),
                    "updated_at": iso_ms(at + timedelta(days=600 + i)),
                    "object_key": _key(rng),
                    "tid": None if i == 0 else f"T{company_id}{i:02d}",
                    "priority": 1 + i // 3,
                    "weight": 1,
                    "timeout_seconds": 15 if i == 0 else 30,
                    "timer_offset": 0,
                    "send_digits": None,
                    "concurrency_cap": None if i % 3 else 5,
                    "calls_in_progress": 0,
                    "inband_signals": False,
                    "time_zone": zone,
                    "paused": i == sizes.targets - 1 and sizes.targets > 2,
                    "paused_at": None,
                    "name": tname,
                    "caps": caps(self.ids, hard=100 if i == 1 else None),
                    "business_hours": business_hours(self.ids, tid_, at),
                    "tag_values": tag_values(self.ids, "<<<calling_about:support>>>")
                    if i % 2
                    else [],
                }
            )
            if data.targets[-1]["paused"]:
                data.targets[-1]["paused_at"] = data.targets[-1]["updated_at"]
        for i in range(sizes.campaigns):
            cid, cname = _CAMPAIGNS[i % len(_CAMPAIGNS)]
            if company_id != 1:
                cid = f"{company_id}{cid}"
            at = datetime(2012, 4, 16, 13, 50, 21, tzinfo=UTC) + timedelta(days=i * 11)
            data.campaigns.append(
                {
                    "id": next(self.campaign_ids),
                    "cid": cid,
                    "name": cname,
                    "updated_at": iso_s(at + timedelta(days=90, hours=13, minutes=50)),
                    "created_at": iso_s(at),
                    "record_calls": True,
                    "record_seconds": 3600,
                    "dedupe_seconds": 86400 if i % 2 == 0 else 0,
                    "affiliate_can_pull_number": False,
                    "show_key": _key(rng)[:32],
                    "greeting": {
                        "message": "Hi There! Press one to continue.",
                        "voice_gender": "Female" if i % 2 == 0 else "Male",
                    },
                    "timers": [
                        {
                            "timer": {
                                "id": next(self.ids),
                                "seconds": 0,
                                "url": "http://www.thertrack.com/click.track?CID=[campaign_id]&AFID=[affiliate_id]&SID=[sub_id]",
                            }
                        },
                        {
                            "timer": {
                                "id": next(self.ids),
                                "seconds": 90,
                                "url": "http://www.thertrack.com/pixel.track?CID=[campaign_id]&AFID=[affiliate_id]&SID=[sub_id]&MerchantReferenceID=[caller_id]-[called_number]-[call_duration]",
                            }
                        },
                    ],
                    "menu_options": [
                        {
                            "menu_option": {
                                "id": next(self.ids),
                                "option": "1",
                                "target_cid": None,
                                "target_number": data.targets[i % len(data.targets)]["number"],
                            }
                        }
                    ],
                }
            )
        for i in range(sizes.numbers):
            campaign = data.campaigns[i % len(data.campaigns)]
            affiliate = data.affiliates[i % len(data.affiliates)]
            toll_free = i % 3 != 0
            prefix = (
                ("888", "877", "866", "855")[i % 4] if toll_free else ("647", "416", "212")[i % 3]
            )
            at = datetime(2012, 4, 18, 6, 5, 5, tzinfo=UTC) + timedelta(days=i, hours=company_id)
            digits = f"+1{prefix}{rng.randrange(2_000_000, 9_999_999):07d}"
            data.numbers.append(
                {
                    "id": next(self.number_ids),
                    "number": "+16479311232" if (company_id, i) == (1, 0) else digits,
                    "toll_free": toll_free,
                    "updated_at": iso_s(at + timedelta(days=15, hours=7)),
                    "created_at": iso_s(at),
                    "sid": _SIDS[i % len(_SIDS)],
                    "afid": affiliate["afid"],
                    "cid": campaign["cid"],
                    "uses_campaign_settings": True,
                    "greeting": {**campaign["greeting"], "inherited": True},
                    "timers": [{**t["timer"], "inherited": True} for t in campaign["timers"]],
                    "menu_options": [
                        {"menu_option": {**m["menu_option"], "inherited": True}}
                        for m in campaign["menu_options"]
                    ],
                }
            )
        for i in range(sizes.pools):
            at = datetime(2013, 4, 25, 16, 16, 51, tzinfo=UTC) + timedelta(days=i * 5)
            data.number_pools.append(
                {
                    "id": next(self.pool_ids),
                    "numbers_count": (i * 4) % 11,
                    "type": "Toll-free" if i % 2 == 0 else "Local",
                    "country": ("CA", "US", "GB")[i % 3],
                    "max_pool_size": 10 * (i + 1),
                    "buffer_seconds": 0 if i == 0 else 300,
                    "updated_at": iso_s(at),
                    "created_at": iso_s(at),
                    "google_analytics": i == 1,
                    "hide_embedded_access": False,
                    "afid": data.affiliates[i % len(data.affiliates)]["afid"] if i != 1 else None,
                    "cid": data.campaigns[i % len(data.campaigns)]["cid"],
                    "reserve_size": 1,
                }
            )
        for i in range(sizes.contacts):
            caller = _CALLERS[(i + company_id) % len(_CALLERS)][0]
            numbers = [{"number": caller, "description": "Landline", "id": next(self.ids)}]
            if i % 2 == 1:
                mobile = f"+1800{rng.randrange(2_000_000, 9_999_999):07d}"
                numbers.append({"number": mobile, "description": "Mobile", "id": next(self.ids)})
            name = " ".join(p for p in _PEOPLE[i % len(_PEOPLE)][:2])
            if (company_id, i) == (1, 0):
                numbers[0]["number"], name = "+18668987878", "Retreaver Support"
            data.contacts.append(
                {
                    "id": next(self.contact_ids),
                    "contact_numbers": numbers,
                    "tag_values": [
                        {"key": "name", "value": name, "operator": "==", "id": next(self.tag_ids)}
                    ],
                }
            )
        documented = ("+13213749611", "+13216065590", "+13216437667")
        for i in range(sizes.suppressed):
            number = f"+1321{rng.randrange(2_000_000, 9_999_999):07d}"
            record: Record = {
                "id": next(self.suppressed_ids),
                "number": documented[i] if company_id == 1 and i < 3 else number,
                "created_at": iso_ms(datetime(2024, 9, 30, 21, 9, 54, 769000, tzinfo=UTC)),
                "can_resubscribe": True,
                "company_id": company_id,
            }
            if i < 2:
                record["cid"] = data.campaigns[i % len(data.campaigns)]["cid"]
            data.suppressed_numbers.append(record)
        for i in range(sizes.static):
            number = f"+1866{rng.randrange(2_000_000, 9_999_999):07d}"
            data.static_caller_numbers.append(
                {
                    "id": next(self.static_ids),
                    "number": "+18668987878" if (company_id, i) == (1, 0) else number,
                    "created_at": iso_ms(
                        datetime(2013, 10, 2, 18, 36, 14, 166000, tzinfo=UTC) + timedelta(days=i)
                    ),
                }
            )
        for i in range(sizes.groups):
            members = [t["id"] for t in data.targets[i : i + 3]]
            data.target_groups.append(
                {
                    "id": next(self.group_ids),
                    "name": ("Retreaver Team", "Overflow")[i % 2],
                    "target_ids": members,
                    "concurrency_cap": None if i == 0 else 5,
                    "calls_in_progress": 0,
                    "behavior": 1 + i % 2,
                    "priority": None if i == 0 else 1,
                    "weight": None if i == 0 else 1,
                    "caps": caps(self.ids),
                }
            )
        data.calls = self.calls(rng, company_id, sizes, data)
        return data

    def calls(
        self, rng: random.Random, company_id: int, sizes: _Sizes, data: CompanyData
    ) -> list[Call]:
        found: list[Call] = []
        seen_callers: set[str] = set()
        seen_pairs: set[tuple[str, int]] = set()
        spacing = timedelta(days=5) / max(sizes.calls, 1)
        for i in range(sizes.calls):
            caller, zip_, state, city, country = _CALLERS[rng.randrange(len(_CALLERS))]
            number = data.numbers[rng.randrange(len(data.numbers))]
            campaign = next(c for c in data.campaigns if c["cid"] == number["cid"])
            affiliate = next(
                (a for a in data.affiliates if a["afid"] == number["afid"] and i % 5 != 4), None
            )
            connected = rng.random() < 0.75
            target = data.targets[rng.randrange(len(data.targets))] if connected else None
            group = (
                data.target_groups[0]
                if target and target["id"] in data.target_groups[0]["target_ids"]
                else None
            )
            created = sizes.first_day + spacing * i + timedelta(seconds=rng.randrange(60))
            created = created.replace(microsecond=rng.randrange(1000) * 1000)
            start = created - timedelta(milliseconds=rng.randrange(100, 200))
            ivr = rng.randrange(3, 30)
            hold = rng.randrange(2, 20) if connected else rng.randrange(5, 20)
            dialed = rng.randrange(20, 600) if connected else 0
            total = ivr + hold + dialed
            forwarded = start + timedelta(seconds=ivr + hold) if connected else None
            end = start + timedelta(seconds=total, milliseconds=rng.randrange(1000))
            determined = end + timedelta(seconds=20, milliseconds=rng.randrange(1000))
            updated = determined + timedelta(seconds=6, milliseconds=rng.randrange(1000))
            converted = connected and dialed >= 90
            revenue = float(rng.choice((5, 10, 25, 35))) if converted else None
            payout = (revenue / 2 if affiliate else 0.0) if revenue is not None else None
            billable = max(1, math.ceil(total / 60))
            cost = round(0.035 * billable + 0.01 * (2 if connected else 1), 2)
            repeat = caller in seen_callers
            seen_callers.add(caller)
            target_repeat = None if target is None else (caller, target["id"]) in seen_pairs
            if target is not None:
                seen_pairs.add((caller, target["id"]))
            call_uuid = _uuid(rng)
            cc = country.lower()
            tags = {
                "geo": ",".join(
                    (caller[2:5], cc, f"{cc}-{zip_ or state.lower()}", f"{cc}-{state.lower()}")
                ),
                "utm_campaign": _UTM[i % len(_UTM)],
                "utm_source": _SOURCES[i % len(_SOURCES)],
                "status": "success",
            }
            if target is not None:
                tags["system_target_id"] = str(target["id"])
            recording = (
                f"http://callpixels.com/recordings/{call_uuid.replace('-', '')}"
                f"/call_{caller[1:]}_{int(start.timestamp())}.mp3"
                if connected
                else None
            )
            v1: Record = {
                "uuid": call_uuid,
                "caller": caller,
                "caller_zip": zip_,
                "caller_state": state,
                "caller_city": city,
                "caller_country": country,
                "dialed_call_duration": dialed,
                "total_duration": total,
                "status": "finished",
                "start_time": iso_s(start),
                "forwarded_time": iso_s(forwarded) if forwarded else None,
                "end_time": iso_s(end),
                "cid": campaign["cid"],
                "afid": affiliate["afid"] if affiliate else None,
                "sid": number["sid"],
                "dialed_number": target["number"] if target else None,
                "updated_at": iso_s(updated),
                "created_at": iso_s(created),
                "recording_url": recording,
            }
            fired = [
                {
                    "fired_pixel": {
                        "url": "https://example.com",
                        "fire_order": 1 if j == 0 else 0,
                        "batch_uuid": _uuid(rng),
                        "created_at": iso_ms(
                            determined if j == 0 else start + timedelta(seconds=j)
                        ),
                        "fired_at": None if j == 0 else iso_ms(start + timedelta(seconds=j)),
                        "status": "new" if j == 0 else "fired",
                        "webhook_name": None if j == 0 else f"Webhook {j}",
                    }
                }
                for j in range(3 if converted else 2)
            ]
            profit_net = (revenue or 0.0) - (payout or 0.0)
            v2: Record = {
                "uuid": call_uuid,
                "caller": caller,
                "caller_number_sent": None,
                "caller_zip": zip_,
                "caller_state": state,
                "caller_city": city,
                "caller_country": country,
                "dialed_call_duration": dialed,
                "total_duration": total,
                "ivr_duration": ivr,
                "hold_duration": hold,
                "status": "finished",
                "start_time": iso_ms(start),
                "forwarded_time": iso_ms(forwarded) if forwarded else None,
                "end_time": iso_ms(end),
                "cid": campaign["cid"],
                "afid": v1["afid"],
                "sid": number["sid"],
                "dialed_number": v1["dialed_number"],
                "revenue": revenue,
                "payout": payout,
                "postback_value": None,
                "network_sale_timer_fired": True if converted else None,
                "affiliate_sale_timer_fired": True if converted and affiliate else None,
                "target_sale_timer_fired": True if converted else None,
                "hung_up_by": "caller" if i % 3 else "target",
                "duplicate": False,
                "payable_duplicate": False,
                "receivable_duplicate": False,
                "callpixels_target_id": target["id"] if target else None,
                "system_target_id": target["id"] if target else None,
                "system_campaign_id": campaign["id"],
                "system_affiliate_id": affiliate["id"] if affiliate else None,
                "fired_pixels_count": len(fired),
                "charge_total": f"{cost:.2f}",
                "keys_pressed": ["1"],
                "repeat": repeat,
                "affiliate_repeat": repeat and affiliate is not None,
                "target_repeat": target_repeat,
                "number_repeat": repeat,
                "visitor_url": "https://example.com",
                "company_id": company_id,
                "conversions_determined_at": iso_ms(determined),
                "updated_at": iso_ms(updated),
                "created_at": iso_ms(created),
                "billable_minutes": billable,
                "upstream_call_uuid": None,
                "downstream_call_uuids": [],
                "target_group": {"id": group["id"], "name": group["name"]} if group else {},
                "recording_url": recording,
                "number": number["number"],
                "converted": converted,
                "payable": converted and affiliate is not None,
                "receivable": converted,
                "conversion_seconds": 90 if converted else None,
                "tid": target["tid"] if target else None,
                "tags": tags,
                "fired_pixels": fired,
                "via": "inbound-dial",
                "rescued": False,
                "campaign_id": campaign["id"],
                "campaign_name": campaign["name"],
                "number_id": number["id"],
                "target_id": target["id"] if target else None,
                "affiliate_name": f"{affiliate['first_name']} {affiliate['last_name']}"
                if affiliate
                else None,
                "connected": connected,
                "profit_gross": f"{profit_net - cost:.2f}",
                "profit_net": profit_net,
                "target_name": target["name"] if target else None,
                "time_to_call_in_seconds": 168000 + rng.randrange(1000),
                "time_to_connect_in_seconds": ivr + hold,
                "total_cost": f"{cost:.2f}",
            }
            found.append(
                Call(
                    uuid=call_uuid,
                    created_at=created,
                    updated_at=updated,
                    caller=caller,
                    afid=v1["afid"],
                    cid=campaign["cid"],
                    tid=v2["tid"],
                    sid=number["sid"],
                    v1=v1,
                    v2=v2,
                )
            )
        return found


def seed() -> CoreData:
    """A fresh, mutable copy of the seeded data (the same every time)."""
    seeder = _Seeder()
    companies = {cid: seeder.company(cid, name) for cid, (name, _) in _COMPANIES.items()}
    by_company = {cid: seeder.fill(cid, sizes) for cid, (_, sizes) in _COMPANIES.items()}
    return CoreData(
        companies=companies,
        by_company=by_company,
        keys=dict(API_KEYS),
        ids=itertools.count(50_000_000),
    )
