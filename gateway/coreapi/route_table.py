"""The allow-list: every Core API route the gateway mirrors, in one table.

Built from both references (``retreaver-core-api.txt`` and the 2026-05 one, which adds
the versioned ``/api/v1/calls`` and ``/api/v1/affiliates`` paths, v3/v4 calls and caller
lists). A request reaches the Core API
only if its path matches a template here *and* every path parameter matches its grammar
below; anything else is the gateway's own 404 and is never forwarded. The upstream path
is rebuilt from the template and the validated parameters (never copied from the
request), so no encoding trick, dot segment or foreign authority can ride along.

Formats: the unversioned API (and its versioned ``/api/v1`` twins) is "multi-format"
(``.json`` and ``.xml`` for every resource); v2, v3 and v4 calls, caller lists and
``/api/v1/reports`` are documented in JSON only.

Write routes (create/update/delete, caps, ``reset_cap``, tag lists travel in PUT bodies)
are a separate table: refused with 405 unless ``GATEWAY_CORE_API_ALLOW_WRITES=true``.
``CHECK_ROUTES`` are POSTs that only read (``caller_list_checks``): forwarded whatever the
writes flag says, but like a write never cached and never retried.

Caller-list routes are authorised by a postback ``key`` in the query *and* an
``Authorization: Bearer`` secret (``auth=True``): only those routes forward the header.

Every route belongs to a cache ``group``: a write clears the cached reads of its whole
group (gateway/coreapi/lookups.py). Groups are coarser than one path on purpose: the
same target answers at ``/targets/{id}`` and ``/targets/tid/{tid}``, and a target group's
membership shows in its targets' ``target_group_ids``, so the resources that mention each
other share a group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.coreapi.client import Upstream

JSON_XML = ("json", "xml")
JSON_ONLY = ("json",)

# Path parameter grammars. Each admits only characters that need no encoding in a path
# and can never form a dot segment, a separator or an authority.
PARAMS: dict[str, re.Pattern[str]] = {
    "uuid": re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}"),
    "id": re.compile(r"[0-9]{1,18}"),
    # Customer-editable ids (afid, tid, cid): "0002", "0044", "superaffiliate".
    "afid": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"),
    "tid": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"),
    "cid": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"),
    # E.164 with its "+" ("The number should be in the format: +13216065590").
    "number": re.compile(r"\+[1-9][0-9]{6,14}"),
    # A caller-list number: "preferably E.164, but NANP format is also accepted".
    "phone": re.compile(r"\+?[1-9][0-9]{6,14}"),
    # A caller list's name on its target ("suppressed", "book_of_business").
    "name": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"),
}

_PLACEHOLDER = re.compile(r"\{([a-z]+)\}")


@dataclass(frozen=True, slots=True)
class CoreRoute:
    """One resource path of the Core API, served in ``formats``."""

    template: str  # without extension: "/calls/{uuid}"
    upstream: Upstream = Upstream.V1
    formats: tuple[str, ...] = JSON_XML
    methods: tuple[str, ...] = ("GET",)
    validate_reports: bool = False
    auth: bool = False  # forwards Authorization (caller lists)

    @property
    def group(self) -> str:
        """The cache group a write to this route clears (see the module docstring)."""
        return group_of(self.template)

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(_PLACEHOLDER.findall(self.template))

    def paths(self) -> list[str]:
        """The route templates as served (and as metric labels): ``/calls/{uuid}.json``."""
        return [f"{self.template}.{fmt}" for fmt in self.formats]


V2 = Upstream.V2

#: Resources that mention each other share one cache group; others are their own group.
GROUPS: dict[str, str] = {
    **dict.fromkeys(
        ("affiliates", "targets", "target_groups", "campaigns", "numbers", "number_pools"),
        "routing",
    ),
    **dict.fromkeys(
        ("contacts", "contact_numbers", "suppressed_numbers", "suppression_list"), "contacts"
    ),
    **dict.fromkeys(("company", "companies"), "companies"),
}
_VERSION = re.compile(r"^/api/v[0-9]+")


def group_of(template: str) -> str:
    """``/api/v2/targets/{id}/caller_lists/...`` -> caller_lists, ``/targets/{id}`` -> routing."""
    if "/caller_lists" in template:
        return "caller_lists"
    first = _VERSION.sub("", template).split("/")[1]
    return GROUPS.get(first, first)


_CALLER_LIST = "/api/v2/targets/{id}/caller_lists/{name}"

# Every GET route in the reference. Order matters only where a literal segment could
# also match a parameter (``check`` before ``{number}``).
READ_ROUTES: tuple[CoreRoute, ...] = (
    # Calls, v1 (list with created_at_start/end, sort_by, order, caller, client_afid,
    # client_cid, client_tid, sub_id, page) and by uuid.
    CoreRoute("/calls"),
    CoreRoute("/calls/{uuid}"),
    # The same, at the versioned paths the 2026-05 reference documents.
    CoreRoute("/api/v1/calls"),
    CoreRoute("/api/v1/calls/{uuid}"),
    # Calls, v2, v3 (number as an object) and v4 (campaign as an object).
    CoreRoute("/api/v2/calls", V2, JSON_ONLY),
    CoreRoute("/api/v2/calls/{uuid}", V2, JSON_ONLY),
    CoreRoute("/api/v3/calls", V2, JSON_ONLY),
    CoreRoute("/api/v3/calls/{uuid}", V2, JSON_ONLY),
    CoreRoute("/api/v4/calls", V2, JSON_ONLY),
    CoreRoute("/api/v4/calls/{uuid}", V2, JSON_ONLY),
    # Affiliates: list, our id, customer id; unversioned and versioned.
    CoreRoute("/affiliates"),
    CoreRoute("/affiliates/{id}"),
    CoreRoute("/affiliates/afid/{afid}"),
    CoreRoute("/api/v1/affiliates"),
    CoreRoute("/api/v1/affiliates/{id}"),
    CoreRoute("/api/v1/affiliates/afid/{afid}"),
    # Targets.
    CoreRoute("/targets"),
    CoreRoute("/targets/{id}"),
    CoreRoute("/targets/tid/{tid}"),
    # Campaigns.
    CoreRoute("/campaigns"),
    CoreRoute("/campaigns/{id}"),
    CoreRoute("/campaigns/cid/{cid}"),
    # Numbers (list filters: cid, afid, sid).
    CoreRoute("/numbers"),
    CoreRoute("/numbers/{id}"),
    # Number pools (list filters: cid, afid).
    CoreRoute("/number_pools"),
    CoreRoute("/number_pools/{id}"),
    # Companies: the active one, all, by id.
    CoreRoute("/company"),
    CoreRoute("/companies"),
    CoreRoute("/companies/{id}"),
    # Contacts: list, by id, by phone number.
    CoreRoute("/contacts"),
    CoreRoute("/contacts/{id}"),
    CoreRoute("/contact_numbers/{number}/contact"),
    # Contact numbers. The reference documents PUT/DELETE on this path; the issue lists
    # contact numbers among the reads, so the GET is mirrored too (Retreaver answers it).
    CoreRoute("/contact_numbers/{number}"),
    # Suppressed numbers: check, list, by number; and the deprecated check.
    CoreRoute("/suppressed_numbers/check"),
    CoreRoute("/suppressed_numbers"),
    CoreRoute("/suppressed_numbers/{number}"),
    CoreRoute("/suppression_list/check"),
    # Static caller numbers (list only; the reference has no GET by id).
    CoreRoute("/static_caller_numbers"),
    # Target groups.
    CoreRoute("/target_groups"),
    CoreRoute("/target_groups/{id}"),
    # Caller lists on a target (postback key + Bearer secret): the list, and a number on
    # it (404 when the number is not on the list, passed through like any 404).
    CoreRoute(_CALLER_LIST, V2, JSON_ONLY, auth=True),
    CoreRoute(_CALLER_LIST + "/caller_list_numbers/{phone}", V2, JSON_ONLY, auth=True),
    # Reports (validated before forwarding).
    CoreRoute("/api/v1/reports", formats=JSON_ONLY, validate_reports=True),
)

# POSTs that only read: forwarded without the writes flag, never cached, never retried.
CHECK_ROUTES: tuple[CoreRoute, ...] = (
    CoreRoute(_CALLER_LIST + "/caller_list_checks", V2, JSON_ONLY, methods=("POST",), auth=True),
)

_PUT_DELETE = ("PUT", "DELETE")

# Every write route in the reference; forwarded only when writes are allowed.
WRITE_ROUTES: tuple[CoreRoute, ...] = (
    CoreRoute("/affiliates", methods=("POST",)),
    CoreRoute("/affiliates/{id}", methods=_PUT_DELETE),
    CoreRoute("/affiliates/afid/{afid}", methods=_PUT_DELETE),
    CoreRoute("/api/v1/affiliates", methods=("POST",)),
    CoreRoute("/api/v1/affiliates/{id}", methods=_PUT_DELETE),
    CoreRoute("/api/v1/affiliates/afid/{afid}", methods=_PUT_DELETE),
    CoreRoute("/targets", methods=("POST",)),
    CoreRoute("/targets/{id}", methods=_PUT_DELETE),
    CoreRoute("/targets/tid/{tid}", methods=_PUT_DELETE),
    CoreRoute("/targets/{id}/reset_cap", methods=("POST",)),
    CoreRoute("/campaigns", methods=("POST",)),
    CoreRoute("/campaigns/{id}", methods=_PUT_DELETE),
    CoreRoute("/campaigns/cid/{cid}", methods=_PUT_DELETE),
    CoreRoute("/numbers", methods=("POST",)),
    CoreRoute("/numbers/{id}", methods=_PUT_DELETE),
    CoreRoute("/number_pools", methods=("POST",)),
    CoreRoute("/number_pools/{id}", methods=_PUT_DELETE),
    CoreRoute("/companies", methods=("POST",)),
    CoreRoute("/companies/{id}", methods=_PUT_DELETE),
    CoreRoute("/contacts", methods=("POST",)),
    CoreRoute("/contacts/{id}", methods=_PUT_DELETE),
    CoreRoute("/contact_numbers/{number}/contact", methods=_PUT_DELETE),
    CoreRoute("/contact_numbers/{number}", methods=_PUT_DELETE),
    CoreRoute("/suppressed_numbers/{number}", methods=("POST", "PUT", "DELETE")),
    CoreRoute("/contact_numbers/{number}/suppressed_number", methods=("POST", "DELETE")),
    CoreRoute("/static_caller_numbers", methods=("POST",)),
    CoreRoute("/static_caller_numbers/{id}", methods=("DELETE",)),
    CoreRoute("/target_groups", methods=("POST",)),
    CoreRoute("/target_groups/{id}", methods=_PUT_DELETE),
    CoreRoute("/target_groups/{id}/reset_cap", methods=("POST",)),
    CoreRoute("/api/v2/targets/{id}/caller_lists", V2, JSON_ONLY, ("POST",), auth=True),
    CoreRoute(_CALLER_LIST, V2, JSON_ONLY, ("DELETE",), auth=True),
    CoreRoute(_CALLER_LIST + "/caller_list_numbers", V2, JSON_ONLY, ("POST",), auth=True),
    CoreRoute(_CALLER_LIST + "/caller_list_numbers/{phone}", V2, JSON_ONLY, ("DELETE",), auth=True),
    CoreRoute(_CALLER_LIST + "/caller_list_uploads", V2, JSON_ONLY, ("POST",), auth=True),
)


def upstream_path(route: CoreRoute, fmt: str, params: dict[str, str]) -> str | None:
    """The path to send upstream, rebuilt from validated parameters; None if any is bad."""
    if fmt not in route.formats:
        return None
    values: dict[str, str] = {}
    for name in route.params:
        value = params.get(name)
        if value is None or PARAMS[name].fullmatch(value) is None:
            return None
        values[name] = value
    path = _PLACEHOLDER.sub(lambda m: values[m.group(1)], route.template)
    return f"{path}.{fmt}"


def raw_path_is_plain(raw_path: bytes) -> bool:
    """True when the request path used no percent-encoding except ``%2B`` (a phone's "+").

    Matching happens on the decoded path; refusing every other escape means ``%2e%2e``,
    ``%2f``, ``%5c``, ``%00`` and friends never even reach the table.
    """
    if b"%" not in raw_path:
        return True
    return b"%" not in raw_path.replace(b"%2B", b"").replace(b"%2b", b"")
