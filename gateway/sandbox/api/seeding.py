"""Seeded, deterministic Core API data: the same companies and objects on every start.

Values are modelled on the reference's examples (afid ``0002`` Nancy Drew, campaign
``111`` SuperFuntime, target 6588 ``Jason Cell`` at +18668987878, number 5
+16479311232). Every random choice comes from a ``random.Random`` seeded with a fixed
string, so two sandboxes (or a test and the sandbox it talks to) agree on every byte.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.sandbox.api.data import (
    API_KEYS,
    CompanyData,
    CoreData,
    Record,
    business_hours,
    caps,
    inherited_settings,
    iso_ms,
    iso_s,
    tag_values,
)
from gateway.sandbox.api.seeding_calls import CALLERS, seed_calls


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


def _key(rng: random.Random) -> str:
    return hashlib.sha256(rng.getrandbits(64).to_bytes(8, "big")).hexdigest()


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
        """Today's shape (2026-05 reference; the deprecated one had click and sale URLs)."""
        created = datetime(2012, 4, 15, 5, 44, 10, tzinfo=UTC) + timedelta(days=cid - 1)
        return company_record(cid, name, created, _OWNERS[(cid - 1) % len(_OWNERS)])

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
                    **inherited_settings(campaign),
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
            caller = CALLERS[(i + company_id) % len(CALLERS)][0]
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
            if i < 2:  # an integer: the campaign's id, as the 2026-05 reference shows it
                record["cid"] = data.campaigns[i % len(data.campaigns)]["id"]
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
        data.calls = seed_calls(rng, company_id, sizes.calls, sizes.first_day, data)
        return data


_OWNERS = ("Alice Bob", "Charlie Smith", "Dana Lee")


def company_record(cid: int, name: str, created: datetime, owner: str) -> Record:
    return {
        "id": cid,
        "name": name,
        "created_at": iso_ms(created),
        "updated_at": iso_ms(created + timedelta(days=22, hours=9, minutes=48, seconds=34)),
        "embedded_key": hashlib.blake2b(f"company-{cid}".encode(), digest_size=16).hexdigest(),
        "per_number": "1.0",
        "use_global_suppression_list": True,
        "balance": "100.0",
        "owner_user_name": owner,
    }


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
