"""Writes addressed by phone number: contacts and contact numbers, and suppressed
numbers (current and deprecated routes, each with the answer shape the reference shows)."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from starlette.responses import Response

from gateway.sandbox.api.attrs import Invalid, assign, utcnow
from gateway.sandbox.api.builders import apply_contact
from gateway.sandbox.api.context import Ctx, phone
from gateway.sandbox.api.data import Record, iso_ms
from gateway.sandbox.api.reads import contact_by_number, find
from gateway.sandbox.api.render import render
from gateway.sandbox.api.routing import campaign_by_cid


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
        apply_contact(ctx, changed, attrs)
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
            "created_at": iso_ms(utcnow()),
            "can_resubscribe": True,
            "company_id": ctx.company_id,
        }
        ctx.company.suppressed_numbers.append(record)
    _apply_suppression(ctx, record, attrs)
    return record


def _apply_suppression(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    assign(record, attrs, {"can_resubscribe": "bool"})
    # The reference sends the campaign's customer id ("campaign_id": "116dc0f6") and shows
    # the stored ``cid`` as an integer (the campaign's id, "cid": 159).
    cid = attrs.get("campaign_id", attrs.get("cid"))
    if cid not in (None, ""):
        record["cid"] = campaign_by_cid(ctx, str(cid))["id"]


def _flat(ctx: Ctx, record: Record) -> dict[str, Any]:
    """The shape the reference shows for ``POST /suppressed_numbers/{number}``."""
    campaign = next((c for c in ctx.company.campaigns if c["id"] == record.get("cid")), None)
    return {
        "id": record["id"],
        "company_id": record["company_id"],
        "affiliate_id": None,
        "campaign_id": campaign["id"] if campaign else None,
        "number": record["number"],
        "created_at": record["created_at"],
        "updated_at": iso_ms(utcnow()),
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
