"""The seeded call log: callers from the reference's examples, routed through the
company's numbers, campaigns and targets, with both the v1 and the v2 rendering."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from gateway.sandbox.api.data import Call, CompanyData, Record, iso_ms, iso_s, random_uuid

CALLERS = (
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
_UTM = ("ret_campaign_123", "ret_campaign_456", "ret_campaign_789")
_SOURCES = ("google", "facebook", "bing")


def seed_calls(
    rng: random.Random, company_id: int, count: int, first_day: datetime, data: CompanyData
) -> list[Call]:
    """``count`` calls over five days from ``first_day``, through the company's numbers."""
    found: list[Call] = []
    seen_callers: set[str] = set()
    seen_pairs: set[tuple[str, int]] = set()
    spacing = timedelta(days=5) / max(count, 1)
    for i in range(count):
        caller, zip_, state, city, country = CALLERS[rng.randrange(len(CALLERS))]
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
        created = first_day + spacing * i + timedelta(seconds=rng.randrange(60))
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
        call_uuid = random_uuid(rng)
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
                    "batch_uuid": random_uuid(rng),
                    "created_at": iso_ms(determined if j == 0 else start + timedelta(seconds=j)),
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
