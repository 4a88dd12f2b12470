"""Link rewriting and the client's origin (pure functions over an ASGI scope)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.coreapi.links import client_origin, rewrite_link


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


def test_only_the_origin_of_a_link_url_changes() -> None:
    upstream = (
        '<https://retreaver.com/calls.json?api_key=woof&company_id=1&page=6996>; rel="last", '
        '<https://retreaver.com/calls.json?api_key=woof&company_id=1&page=2>; rel="next"'
    )
    assert rewrite_link(upstream, "http://gw.example:8080") == (
        '<http://gw.example:8080/calls.json?api_key=woof&company_id=1&page=6996>; rel="last", '
        '<http://gw.example:8080/calls.json?api_key=woof&company_id=1&page=2>; rel="next"'
    )


def test_relative_link_urls_are_left_as_they_are() -> None:
    value = '</calls.json?page=2&api_key=k>; rel="next"'
    assert rewrite_link(value, "https://gw") == value


@pytest.mark.parametrize(
    "query",
    [
        "api_key=s%2B3cret&page=2",
        "API_KEY=x&created_at_start=2016-01-01T00:00:00+00:00&page=2",
        "key=7fc4&page=2&&x=%20",
        "",
    ],
)
def test_every_byte_of_the_query_stays(query: str) -> None:
    value = f'<https://api.retreaver.com:443/api/v1/calls.json?{query}>; rel="next"'
    assert rewrite_link(value, "http://gw:8080") == (
        f'<http://gw:8080/api/v1/calls.json?{query}>; rel="next"'
    )


def test_v2_paths_survive_rewriting() -> None:
    value = '<https://api.retreaver.com/api/v2/calls.json?api_key=k&page=3>; rel="next"'
    assert rewrite_link(value, "https://gw") == (
        '<https://gw/api/v2/calls.json?api_key=k&page=3>; rel="next"'
    )
