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
from collections.abc import Callable

from starlette.responses import Response

from gateway.sandbox.api import builders as b
from gateway.sandbox.api import by_phone as p
from gateway.sandbox.api import routing as r
from gateway.sandbox.api.attrs import Apply, Build, Invalid, assign, require, utcnow
from gateway.sandbox.api.context import Ctx, Handler
from gateway.sandbox.api.data import ApiKey, CompanyData, Record, iso_ms, iso_s
from gateway.sandbox.api.reads import (
    AFFILIATES,
    CAMPAIGNS,
    CONTACTS,
    NUMBER_POOLS,
    NUMBERS,
    STATIC_CALLER_NUMBERS,
    TARGET_GROUPS,
    TARGETS,
    Resource,
    find,
    present,
)
from gateway.sandbox.api.seeding import company_record

# Today's company takes only a name (2026-05 reference); the rest is the account's.
_COMPANY = {"name": "str"}


# ---------------------------------------------------------------- generic handlers
def _touch(record: Record) -> None:
    if "updated_at" in record:
        stamp = record["updated_at"]
        record["updated_at"] = iso_ms(utcnow()) if "." in stamp else iso_s(utcnow())


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
        return ctx.one(resource.singular, present(ctx, resource, record), 201)

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
        return ctx.one(resource.singular, present(ctx, resource, record))

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
        if resource is TARGETS:  # a deleted target leaves its groups too
            for group in ctx.company.target_groups:
                group["target_ids"] = [i for i in group["target_ids"] if i != record["id"]]
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
        require(attrs, "name")
        owner = ctx.data.companies[ctx.key.active]["owner_user_name"]
        record = company_record(ctx.data.next_id(), "", utcnow(), owner)
        record["updated_at"] = record["created_at"]
        assign(record, attrs, _COMPANY)
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
        assign(changed, attrs, _COMPANY)
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


# ---------------------------------------------------------------- the table
def _affiliate_writes(prefix: str) -> list[tuple[str, str, Handler]]:
    """Affiliates' writes, unversioned and at the 2026-05 reference's ``/api/v1``."""
    return [
        (f"{prefix}/affiliates.{{fmt}}", "POST", create(AFFILIATES, b.build_affiliate)),
        (
            f"{prefix}/affiliates/afid/{{key}}.{{fmt}}",
            "PUT",
            update(AFFILIATES, b.apply_affiliate, "afid"),
        ),
        (f"{prefix}/affiliates/{{key}}.{{fmt}}", "PUT", update(AFFILIATES, b.apply_affiliate)),
        (
            f"{prefix}/affiliates/afid/{{key}}.{{fmt}}",
            "DELETE",
            delete(AFFILIATES, "afid", _numbers_of("afid", "Affiliate")),
        ),
        (
            f"{prefix}/affiliates/{{key}}.{{fmt}}",
            "DELETE",
            delete(AFFILIATES, "id", _numbers_of("afid", "Affiliate")),
        ),
    ]


WRITES: list[tuple[str, str, Handler]] = [
    *_affiliate_writes(""),
    *_affiliate_writes("/api/v1"),
    ("/targets.{fmt}", "POST", create(TARGETS, b.build_target)),
    ("/targets/tid/{key}.{fmt}", "PUT", update(TARGETS, b.apply_target, "tid")),
    ("/targets/{key}.{fmt}", "PUT", update(TARGETS, b.apply_target)),
    ("/targets/tid/{key}.{fmt}", "DELETE", delete(TARGETS, "tid")),
    ("/targets/{key}.{fmt}", "DELETE", delete(TARGETS)),
    ("/targets/{key}/reset_cap.{fmt}", "POST", reset_cap(TARGETS)),
    ("/campaigns.{fmt}", "POST", create(CAMPAIGNS, r.build_campaign)),
    ("/campaigns/cid/{key}.{fmt}", "PUT", update(CAMPAIGNS, r.apply_campaign, "cid")),
    ("/campaigns/{key}.{fmt}", "PUT", update(CAMPAIGNS, r.apply_campaign)),
    (
        "/campaigns/cid/{key}.{fmt}",
        "DELETE",
        delete(CAMPAIGNS, "cid", _numbers_of("cid", "Campaign")),
    ),
    ("/campaigns/{key}.{fmt}", "DELETE", delete(CAMPAIGNS, "id", _numbers_of("cid", "Campaign"))),
    ("/numbers.{fmt}", "POST", create(NUMBERS, r.build_number)),
    ("/numbers/{key}.{fmt}", "PUT", update(NUMBERS, r.apply_number)),
    ("/numbers/{key}.{fmt}", "DELETE", delete(NUMBERS)),
    ("/number_pools.{fmt}", "POST", create(NUMBER_POOLS, r.build_pool)),
    ("/number_pools/{key}.{fmt}", "PUT", update(NUMBER_POOLS, r.apply_pool)),
    ("/number_pools/{key}.{fmt}", "DELETE", delete(NUMBER_POOLS)),
    ("/companies.{fmt}", "POST", create_company),
    ("/companies/{key}.{fmt}", "PUT", update_company),
    ("/companies/{key}.{fmt}", "DELETE", delete_company),
    ("/contacts.{fmt}", "POST", create(CONTACTS, b.build_contact)),
    ("/contacts/{key}.{fmt}", "PUT", update(CONTACTS, b.apply_contact)),
    ("/contacts/{key}.{fmt}", "DELETE", delete(CONTACTS)),
    ("/contact_numbers/{number}/contact.{fmt}", "PUT", p.update_contact_by_number),
    ("/contact_numbers/{number}/contact.{fmt}", "DELETE", p.delete_contact_by_number),
    ("/contact_numbers/{number}/suppressed_number.{fmt}", "POST", p.suppress_contact_number),
    ("/contact_numbers/{number}/suppressed_number.{fmt}", "DELETE", p.delete_suppressed_number),
    ("/contact_numbers/{number}.{fmt}", "PUT", p.update_contact_number),
    ("/contact_numbers/{number}.{fmt}", "DELETE", p.delete_contact_number),
    ("/suppressed_numbers/{number}.{fmt}", "POST", p.create_suppressed_number),
    ("/suppressed_numbers/{number}.{fmt}", "PUT", p.update_suppressed_number),
    ("/suppressed_numbers/{number}.{fmt}", "DELETE", p.delete_suppressed_number),
    ("/static_caller_numbers.{fmt}", "POST", create(STATIC_CALLER_NUMBERS, b.build_static)),
    ("/static_caller_numbers/{key}.{fmt}", "DELETE", delete(STATIC_CALLER_NUMBERS)),
    ("/target_groups.{fmt}", "POST", create(TARGET_GROUPS, b.build_group)),
    ("/target_groups/{key}.{fmt}", "PUT", update(TARGET_GROUPS, b.apply_group)),
    ("/target_groups/{key}.{fmt}", "DELETE", delete(TARGET_GROUPS)),
    ("/target_groups/{key}/reset_cap.{fmt}", "POST", reset_cap(TARGET_GROUPS)),
]
