"""The Core API sandbox's data model: records, calls, companies, and who may see them.

Records are plain dicts in the documented attribute order (they are rendered as they
are); calls keep a small internal index (:class:`Call`) for filtering and sorting. The
seeded contents come from :mod:`.seeding`.
"""

from __future__ import annotations

import random
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


_CAP_TYPES = ("Daily", "Hard", "Hourly", "Monthly")


def random_uuid(rng: random.Random) -> str:
    return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))


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


def inherited_settings(campaign: Record) -> Record:
    """A number's routing fields when it uses its campaign's settings, marked inherited
    (the shape the reference shows for ``uses_campaign_settings: true``)."""
    return {
        "uses_campaign_settings": True,
        "greeting": {**campaign["greeting"], "inherited": True},
        "timers": [{**t["timer"], "inherited": True} for t in campaign["timers"]],
        "menu_options": [
            {"menu_option": {**m["menu_option"], "inherited": True}}
            for m in campaign["menu_options"]
        ],
    }
