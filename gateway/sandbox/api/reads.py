"""Index and show routes for every resource except calls and reports.

One :class:`Resource` row per collection says how the reference addresses it: its JSON
wrapper (``{"affiliate": {...}}``), the customer-editable key beside ``id`` (afid, tid,
cid) and the query filters its index documents (numbers: cid/afid/sid; number pools:
cid/afid).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from gateway.sandbox.api.context import Ctx, Handler, phone
from gateway.sandbox.api.data import Record
from gateway.sandbox.api.render import render


@dataclass(frozen=True)
class Resource:
    plural: str
    singular: str
    alt: str | None = None
    filters: tuple[str, ...] = ()

    def records(self, ctx: Ctx) -> list[Record]:
        return getattr(ctx.company, self.plural)


AFFILIATES = Resource("affiliates", "affiliate", alt="afid")
TARGETS = Resource("targets", "target", alt="tid")
CAMPAIGNS = Resource("campaigns", "campaign", alt="cid")
NUMBERS = Resource("numbers", "number", filters=("cid", "afid", "sid"))
NUMBER_POOLS = Resource("number_pools", "number_pool", filters=("cid", "afid"))
CONTACTS = Resource("contacts", "contact")
SUPPRESSED_NUMBERS = Resource("suppressed_numbers", "suppressed_number", alt="number")
STATIC_CALLER_NUMBERS = Resource("static_caller_numbers", "static_caller_number")
TARGET_GROUPS = Resource("target_groups", "target_group")


def find(records: list[Record], field: str, value: str) -> Record | None:
    for record in records:
        found = record.get(field)
        if found is not None and str(found) == value:
            return record
    return None


_GROUP_FIELDS = (
    "id", "name", "target_ids", "concurrency_cap", "calls_in_progress", "behavior",
    "priority", "weight",
)  # fmt: skip
_MEMBER_FIELDS = ("id", "number", "name", "priority", "weight")


def _after(record: Record, anchor: str, extra: Record) -> Record:
    """``record`` with ``extra`` inserted after ``anchor`` (the reference's order)."""
    out: Record = {}
    for name, value in record.items():
        out[name] = value
        if name == anchor:
            out.update(extra)
    out.update({k: v for k, v in extra.items() if k not in out})
    return out


def present(ctx: Ctx, resource: Resource, record: Record) -> Record:
    """A record as the 2026-05 reference renders it: a target with the groups it is in
    (``target_group_ids``, ``target_groups``), a target group with its ``targets``.
    Worked out when rendered, so membership changes show everywhere at once."""
    if resource is TARGETS:
        groups = [g for g in ctx.company.target_groups if record["id"] in g["target_ids"]]
        return _after(
            record,
            "name",
            {
                "target_group_ids": [g["id"] for g in groups],
                "target_groups": [{f: g.get(f) for f in _GROUP_FIELDS} for g in groups],
            },
        )
    if resource is TARGET_GROUPS:
        members = {t["id"]: t for t in ctx.company.targets}
        targets = [members[i] for i in record["target_ids"] if i in members]
        return _after(
            record,
            "target_ids",
            {"targets": [{f: t.get(f) for f in _MEMBER_FIELDS} for t in targets]},
        )
    return record


def index(resource: Resource) -> Handler:
    async def handler(ctx: Ctx) -> Response:
        records = resource.records(ctx)
        for name in resource.filters:
            wanted = ctx.param(name)
            if wanted is not None:
                records = [r for r in records if r.get(name) is not None and str(r[name]) == wanted]
        shown = [present(ctx, resource, r) for r in records]
        return ctx.page(resource.plural, resource.singular, shown)

    handler.__name__ = f"list_{resource.plural}"
    return handler


def show(resource: Resource, field: str = "id") -> Handler:
    async def handler(ctx: Ctx) -> Response:
        value = ctx.path("key")
        if field == "number":
            value = phone(value)
        record = find(resource.records(ctx), field, value)
        if record is None:
            return ctx.not_found()
        return ctx.one(resource.singular, present(ctx, resource, record))

    handler.__name__ = f"show_{resource.singular}_by_{field}"
    return handler


async def active_company(ctx: Ctx) -> Response:
    return ctx.one("company", ctx.data.companies[ctx.company_id])


async def list_companies(ctx: Ctx) -> Response:
    return ctx.page("companies", "company", [ctx.data.companies[c] for c in ctx.key.companies])


async def show_company(ctx: Ctx) -> Response:
    raw = ctx.path("key")
    if not raw.isdigit() or int(raw) not in ctx.key.companies:
        return ctx.not_found()
    return ctx.one("company", ctx.data.companies[int(raw)])


def contact_by_number(ctx: Ctx, number: str) -> tuple[Record, Record] | None:
    for contact in ctx.company.contacts:
        for entry in contact["contact_numbers"]:
            if entry["number"] == number:
                return contact, entry
    return None


async def show_contact_by_number(ctx: Ctx) -> Response:
    found = contact_by_number(ctx, phone(ctx.path("number")))
    return ctx.not_found() if found is None else ctx.one("contact", found[0])


async def show_contact_number(ctx: Ctx) -> Response:
    found = contact_by_number(ctx, phone(ctx.path("number")))
    return ctx.not_found() if found is None else ctx.one("contact_number", found[1])


async def suppressed_numbers_check(ctx: Ctx) -> Response:
    exists = bool(ctx.company.suppressed_numbers)
    return render(ctx.fmt, "hash", {"suppressed_numbers_exist": exists})


async def suppression_list_check(ctx: Ctx) -> Response:
    """The deprecated spelling of the check, with its own documented answer."""
    return render(ctx.fmt, "hash", {"suppression_list": bool(ctx.company.suppressed_numbers)})
