"""The sandbox's callers: a share of its reservations are called, and some convert.

When the sandbox makes a reservation for a ping with a caller number, it draws whether
that caller will call (``GATEWAY_SANDBOX_CALL_RATE``, default 0.6, or ``call_rate`` in
``POST /_sandbox/config``) and, if so, logs the call at once in company 1's call log
(what the seeded keys ``barkbarkbark`` and ``woofwoofwoof`` see) to the reservation's
``inbound_number``, with a ``created_at`` inside the reservation's life: ``call_after_ms``
after it when that knob is set, else a random moment in the first half of it (at most
30 s). Calls created "in the future" are there already but, like real ones, only show
in a ``created_at`` window once their time has come. A called reservation converts with
``convert_rate`` (default 0.5) at the reservation's payout. No timer is needed: the call
is simply dated.

The call is a copy of a seeded call of company 1 (so v1 to v4 render it as they render
every call) with its identity, caller, number, times and money replaced.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from gateway.sandbox.api.context import phone
from gateway.sandbox.api.data import Call, CoreData, iso_ms, iso_s, random_uuid

COMPANY_ID = 1
DEFAULT_CALL_RATE = 0.6
DEFAULT_CONVERT_RATE = 0.5
MAX_CALL_AFTER_S = 30.0
# Calls the callers keep in the log; the oldest made go first (the seeded ones stay).
MAX_CALLS = 100_000


class Callers:
    def __init__(self, call_rate: float = DEFAULT_CALL_RATE, seed: int | None = None) -> None:
        self.call_rate = call_rate
        self.random = random.Random(seed)
        self.made: list[str] = []
        self.dropped = 0

    def after_reservation(
        self,
        data: CoreData,
        config: Mapping[str, Any],
        *,
        caller: str | None,
        inbound: str,
        payout: float,
        now: datetime,
        expires: datetime,
    ) -> Call | None:
        """Maybe log the call that follows a reservation; the call, or None."""
        rate = float(config.get("call_rate", self.call_rate))
        if not caller or expires <= now or self.random.random() >= rate:
            return None
        life = (expires - now).total_seconds()
        after_ms = config.get("call_after_ms")
        if after_ms is not None:
            after = min(float(after_ms) / 1000, life)
        else:
            after = self.random.uniform(0.5, max(0.5, min(life / 2, MAX_CALL_AFTER_S)))
        converted = self.random.random() < float(config.get("convert_rate", DEFAULT_CONVERT_RATE))
        company = data.by_company[COMPANY_ID]
        call = _call(
            company.calls[0],
            self.random,
            caller=phone(str(caller)),
            inbound=inbound,
            created=now + timedelta(seconds=after),
            converted=converted,
            payout=payout if converted else None,
        )
        company.calls.append(call)
        self.made.append(call.uuid)
        if len(self.made) > MAX_CALLS:
            oldest = self.made.pop(0)
            company.calls[:] = [c for c in company.calls if c.uuid != oldest]
            self.dropped += 1
        return call


def _call(
    template: Call,
    rng: random.Random,
    *,
    caller: str,
    inbound: str,
    created: datetime,
    converted: bool,
    payout: float | None,
) -> Call:
    uuid = random_uuid(rng)
    start = created - timedelta(milliseconds=150)
    end = start + timedelta(seconds=rng.randrange(95, 400) if converted else rng.randrange(5, 60))
    updated = end + timedelta(seconds=26)
    v1 = copy.deepcopy(template.v1)
    v2 = copy.deepcopy(template.v2)
    for record, fmt in ((v1, iso_s), (v2, iso_ms)):
        record.update(
            uuid=uuid,
            caller=caller,
            start_time=fmt(start),
            end_time=fmt(end),
            created_at=fmt(created),
            updated_at=fmt(updated),
        )
    v2.update(
        number=inbound,
        converted=converted,
        payout=payout,
        revenue=payout,
        payable=converted,
        receivable=converted,
        repeat=False,
        conversion_seconds=90 if converted else None,
    )
    return Call(
        uuid=uuid,
        created_at=created,
        updated_at=updated,
        caller=caller,
        afid=template.afid,
        cid=template.cid,
        tid=template.tid,
        sid=template.sid,
        v1=v1,
        v2=v2,
    )
