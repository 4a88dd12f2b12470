"""Link rewriting and the client's origin (pure functions over an ASGI scope)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core_api.links import client_origin, rewrite_link


def _scope(*headers: tuple[str, str], scheme: str = "http") -> dict[str, Any]:
    return {
        "scheme": scheme,
        "server": ("10.0.0.5", 8080),
        "headers": [(k.encode(), v.encode()) for k, v in headers],
    }


def test_origin_is_the_host_header() -> None:
    assert client_origin(_scope(("host", "gw.example:8080")), trust_forwarded=False) == (
        "http://gw.example:8080"
    )
    assert client_origin(_scope(("host", "[::1]:9000")), trust_forwarded=False) == (
        "http://[::1]:9000"
    )


def test_forwarded_headers_count_only_when_trusted() -> None:
    scope = _scope(
        ("host", "internal:8080"),
        ("x-forwarded-host", "api.example.com, proxy.local"),
        ("x-forwarded-proto", "https"),
    )
    assert client_origin(scope, trust_forwarded=False) == "http://internal:8080"
    assert client_origin(scope, trust_forwarded=True) == "https://api.example.com"


@pytest.mark.parametrize(
    "host", ["evil.example/path", "a@b", "x y", "host:port", "a\\b", "", "ex<ample"]
)
def test_a_malformed_host_falls_back_to_the_server_address(host: str) -> None:
    scope = _scope(("host", host), ("x-forwarded-host", host), ("x-forwarded-proto", "gopher"))
    assert client_origin(scope, trust_forwarded=True) == "http://10.0.0.5:8080"


def test_link_urls_point_at_the_origin_keeping_path_and_query_but_not_the_key() -> None:
    upstream = (
        '<https://retreaver.com/calls.json?api_key=woof&company_id=1&page=6996>; rel="last", '
        '<https://retreaver.com/calls.json?api_key=woof&company_id=1&page=2>; rel="next"'
    )
    assert rewrite_link(upstream, "http://gw.example:8080") == (
        '<http://gw.example:8080/calls.json?company_id=1&page=6996>; rel="last", '
        '<http://gw.example:8080/calls.json?company_id=1&page=2>; rel="next"'
    )


def test_relative_link_urls_keep_their_place_and_lose_the_key() -> None:
    assert rewrite_link('</calls.json?page=2>; rel="next"', "https://gw") == (
        '</calls.json?page=2>; rel="next"'
    )
    assert rewrite_link('</calls.json?page=2&api_key=k>; rel="next"', "https://gw") == (
        '</calls.json?page=2>; rel="next"'
    )


@pytest.mark.parametrize("spelling", ["api_key", "API_KEY", "api%5Fkey", "api_key%20"])
def test_every_spelling_of_the_key_is_removed(spelling: str) -> None:
    value = f'<https://retreaver.com/calls.json?{spelling}=s3cret&page=2>; rel="next"'
    assert "s3cret" not in rewrite_link(value, "https://gw")


def test_v2_paths_survive_rewriting() -> None:
    value = '<https://canary.retreaver.com/api/v2/calls.json?api_key=k&page=3>; rel="next"'
    assert rewrite_link(value, "https://gw") == (
        '<https://gw/api/v2/calls.json?page=3>; rel="next"'
    )
