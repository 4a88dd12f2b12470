"""The allow-list table and its parameter grammars (pure functions)."""

from __future__ import annotations

import pytest

from gateway.coreapi.route_table import (
    CHECK_ROUTES,
    READ_ROUTES,
    WRITE_ROUTES,
    CoreRoute,
    Upstream,
    group_of,
    raw_path_is_plain,
    upstream_path,
)

UUID = "addcf985-017e-4962-be34-cf5d55e74afc"


def _read(template: str) -> CoreRoute:
    return next(r for r in READ_ROUTES if r.template == template)


def test_every_read_route_of_the_reference_is_in_the_table() -> None:
    templates = {r.template for r in READ_ROUTES}
    assert templates == {
        "/calls",
        "/calls/{uuid}",
        "/api/v1/calls",
        "/api/v1/calls/{uuid}",
        "/api/v2/calls",
        "/api/v2/calls/{uuid}",
        "/api/v3/calls",
        "/api/v3/calls/{uuid}",
        "/api/v4/calls",
        "/api/v4/calls/{uuid}",
        "/affiliates",
        "/affiliates/{id}",
        "/affiliates/afid/{afid}",
        "/api/v1/affiliates",
        "/api/v1/affiliates/{id}",
        "/api/v1/affiliates/afid/{afid}",
        "/api/v2/targets/{id}/caller_lists/{name}",
        "/api/v2/targets/{id}/caller_lists/{name}/caller_list_numbers/{phone}",
        "/targets",
        "/targets/{id}",
        "/targets/tid/{tid}",
        "/campaigns",
        "/campaigns/{id}",
        "/campaigns/cid/{cid}",
        "/numbers",
        "/numbers/{id}",
        "/number_pools",
        "/number_pools/{id}",
        "/company",
        "/companies",
        "/companies/{id}",
        "/contacts",
        "/contacts/{id}",
        "/contact_numbers/{number}/contact",
        "/contact_numbers/{number}",
        "/suppressed_numbers/check",
        "/suppressed_numbers",
        "/suppressed_numbers/{number}",
        "/suppression_list/check",
        "/static_caller_numbers",
        "/target_groups",
        "/target_groups/{id}",
        "/api/v1/reports",
    }
    assert all(r.methods == ("GET",) for r in READ_ROUTES)


def test_v2_v3_v4_caller_lists_and_reports_are_json_only_and_v2_up_go_to_the_v2_url() -> None:
    for template in (
        "/api/v2/calls",
        "/api/v2/calls/{uuid}",
        "/api/v3/calls",
        "/api/v3/calls/{uuid}",
        "/api/v4/calls",
        "/api/v4/calls/{uuid}",
        "/api/v2/targets/{id}/caller_lists/{name}",
    ):
        route = _read(template)
        assert route.upstream is Upstream.V2
        assert route.formats == ("json",)
    assert _read("/api/v1/calls").upstream is Upstream.V1
    assert _read("/api/v1/affiliates/afid/{afid}").formats == ("json", "xml")
    reports = _read("/api/v1/reports")
    assert reports.upstream is Upstream.V1
    assert reports.formats == ("json",)
    assert reports.validate_reports
    assert _read("/affiliates").formats == ("json", "xml")


def test_only_caller_list_routes_forward_authorization() -> None:
    every = (*READ_ROUTES, *WRITE_ROUTES, *CHECK_ROUTES)
    assert {r.template for r in every if r.auth} == {
        "/api/v2/targets/{id}/caller_lists",
        "/api/v2/targets/{id}/caller_lists/{name}",
        "/api/v2/targets/{id}/caller_lists/{name}/caller_list_numbers",
        "/api/v2/targets/{id}/caller_lists/{name}/caller_list_numbers/{phone}",
        "/api/v2/targets/{id}/caller_lists/{name}/caller_list_checks",
        "/api/v2/targets/{id}/caller_lists/{name}/caller_list_uploads",
    }
    (check,) = CHECK_ROUTES
    assert check.methods == ("POST",)
    assert check.template.endswith("/caller_list_checks")


@pytest.mark.parametrize(
    ("template", "group"),
    [
        ("/targets/{id}", "routing"),
        ("/targets/tid/{tid}", "routing"),
        ("/target_groups/{id}/reset_cap", "routing"),
        ("/api/v1/affiliates/afid/{afid}", "routing"),
        ("/affiliates", "routing"),
        ("/contact_numbers/{number}/suppressed_number", "contacts"),
        ("/suppressed_numbers/check", "contacts"),
        ("/company", "companies"),
        ("/companies/{id}", "companies"),
        ("/api/v2/targets/{id}/caller_lists/{name}/caller_list_uploads", "caller_lists"),
        ("/api/v4/calls/{uuid}", "calls"),
        ("/static_caller_numbers/{id}", "static_caller_numbers"),
    ],
)
def test_cache_groups_tie_aliases_and_related_resources(template: str, group: str) -> None:
    assert group_of(template) == group


def test_every_write_clears_a_group_that_some_read_is_in() -> None:
    read_groups = {r.group for r in READ_ROUTES}
    assert {w.group for w in WRITE_ROUTES} <= read_groups


def test_literal_check_is_matched_before_the_number_parameter() -> None:
    order = [r.template for r in READ_ROUTES]
    assert order.index("/suppressed_numbers/check") < order.index("/suppressed_numbers/{number}")


def test_write_routes_cover_the_reference_and_never_get() -> None:
    methods = {(r.template, m) for r in WRITE_ROUTES for m in r.methods}
    assert ("/targets/{id}/reset_cap", "POST") in methods
    assert ("/target_groups/{id}/reset_cap", "POST") in methods
    assert ("/suppressed_numbers/{number}", "PUT") in methods
    assert ("/contact_numbers/{number}/suppressed_number", "DELETE") in methods
    assert ("/static_caller_numbers/{id}", "DELETE") in methods
    assert all(m != "GET" for _, m in methods)


@pytest.mark.parametrize(
    ("template", "fmt", "params", "expected"),
    [
        ("/calls/{uuid}", "json", {"uuid": UUID}, f"/calls/{UUID}.json"),
        ("/calls/{uuid}", "xml", {"uuid": UUID}, f"/calls/{UUID}.xml"),
        ("/affiliates/afid/{afid}", "json", {"afid": "0002"}, "/affiliates/afid/0002.json"),
        (
            "/campaigns/cid/{cid}",
            "xml",
            {"cid": "super_aff-1.b"},
            "/campaigns/cid/super_aff-1.b.xml",
        ),
        (
            "/suppressed_numbers/{number}",
            "json",
            {"number": "+13216065590"},
            "/suppressed_numbers/+13216065590.json",
        ),
        (
            "/contact_numbers/{number}/contact",
            "json",
            {"number": "+18001234567"},
            "/contact_numbers/+18001234567/contact.json",
        ),
        ("/api/v1/reports", "json", {}, "/api/v1/reports.json"),
        (
            "/api/v2/targets/{id}/caller_lists/{name}/caller_list_numbers/{phone}",
            "json",
            {"id": "43103", "name": "suppressed", "phone": "5855752500"},
            "/api/v2/targets/43103/caller_lists/suppressed/caller_list_numbers/5855752500.json",
        ),
    ],
)
def test_upstream_path_is_rebuilt_from_valid_parameters(
    template: str, fmt: str, params: dict[str, str], expected: str
) -> None:
    assert upstream_path(_read(template), fmt, params) == expected


@pytest.mark.parametrize(
    ("template", "params"),
    [
        ("/calls/{uuid}", {"uuid": ".."}),
        ("/calls/{uuid}", {"uuid": "addcf985-017e-4962-be34-cf5d55e74afz"}),
        ("/affiliates/{id}", {"id": "1e3"}),
        ("/affiliates/{id}", {"id": "afid"}),
        ("/affiliates/afid/{afid}", {"afid": ".."}),
        ("/affiliates/afid/{afid}", {"afid": ".hidden"}),
        ("/affiliates/afid/{afid}", {"afid": "a@evil.example"}),
        ("/affiliates/afid/{afid}", {"afid": "a\\b"}),
        ("/affiliates/afid/{afid}", {"afid": "a b"}),
        ("/targets/tid/{tid}", {"tid": "x" * 65}),
        ("/suppressed_numbers/{number}", {"number": "13216065590"}),
        ("/suppressed_numbers/{number}", {"number": " 13216065590"}),
        ("/suppressed_numbers/{number}", {"number": "check"}),
        ("/suppressed_numbers/{number}", {"number": "+0123456789"}),
        ("/calls/{uuid}", {}),
        ("/api/v2/targets/{id}/caller_lists/{name}", {"id": "1", "name": "../x"}),
        ("/api/v2/targets/{id}/caller_lists/{name}", {"id": "1", "name": ".hidden"}),
        (
            "/api/v2/targets/{id}/caller_lists/{name}/caller_list_numbers/{phone}",
            {"id": "1", "name": "s", "phone": "+1 585"},
        ),
    ],
)
def test_bad_parameters_build_no_path(template: str, params: dict[str, str]) -> None:
    assert upstream_path(_read(template), "json", params) is None


def test_a_format_the_route_does_not_offer_builds_no_path() -> None:
    assert upstream_path(_read("/api/v1/reports"), "xml", {}) is None
    assert upstream_path(_read("/calls"), "csv", {}) is None


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        (b"/calls.json", True),
        (b"/suppressed_numbers/+13216065590.json", True),
        (b"/suppressed_numbers/%2B13216065590.json", True),
        (b"/suppressed_numbers/%2b13216065590.json", True),
        (b"/calls/%2e%2e/admin.json", False),
        (b"/affiliates/afid/%41.json", False),
        (b"/x%2Fy", False),
        (b"/x%00", False),
        (b"/x%5c", False),
        (b"/x%", False),
        (b"/x%252B", False),
    ],
)
def test_only_the_plus_escape_is_accepted_in_a_path(raw: bytes, plain: bool) -> None:
    assert raw_path_is_plain(raw) is plain


def test_served_templates_are_unique_per_method() -> None:
    seen: set[tuple[str, str]] = set()
    for route in (*READ_ROUTES, *WRITE_ROUTES, *CHECK_ROUTES):
        for path in route.paths():
            for method in route.methods:
                assert (path, method) not in seen
                seen.add((path, method))
