"""Link rewriting and the client's origin (pure functions over an ASGI scope)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.coreapi.links import client_origin, rewrite_link
from tests.support.scripted_upstream import Reply, Seen, scripted_upstream


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


# Each of these names another host to a client that resolves URLs as browsers (and most
# HTTP libraries) do: backslashes before the query are slashes, tabs and newlines vanish,
# leading spaces are trimmed, any number of slashes may follow an http(s) scheme.
HOSTILE_URLS = [
    "//evil.example/calls.json?api_key=k&page=2",
    "///evil.example/calls.json?api_key=k&page=2",
    "\\\\evil.example/calls.json?api_key=k&page=2",
    "/\\evil.example/calls.json?api_key=k&page=2",
    "\\/evil.example/calls.json?api_key=k&page=2",
    "http:\\\\evil.example/calls.json?api_key=k&page=2",
    "https:/\\evil.example/calls.json?api_key=k&page=2",
    "https:evil.example/calls.json?api_key=k&page=2",
    "HTTPS:////evil.example/calls.json?api_key=k&page=2",
    " \t//evil.example/calls.json?api_key=k&page=2",
    "/\t/evil.example/calls.json?api_key=k&page=2",
    "/\n\\evil.example/calls.json?api_key=k&page=2",
    "https://gw.example@evil.example/calls.json?api_key=k&page=2",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_a_url_naming_another_host_in_any_spelling_is_re_pointed(url: str) -> None:
    value = f'<{url}>; rel="next"'
    assert rewrite_link(value, "http://gw:8080") == (
        '<http://gw:8080/calls.json?api_key=k&page=2>; rel="next"'
    )


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "ftp://evil.example/x?api_key=k", "data:,x", "evil:x"]
)
def test_a_link_with_another_scheme_is_dropped_whole(url: str) -> None:
    value = f'<{url}>; rel="prev"; title="a, <b>", <https://up/calls.json?page=2>; rel="next"'
    assert rewrite_link(value, "https://gw") == '<https://gw/calls.json?page=2>; rel="next"'
    assert rewrite_link(f'<{url}>; rel="next"', "https://gw") == ""


def test_a_backslash_in_the_query_is_kept() -> None:
    value = '<//evil/calls.json?q=a\\b&api_key=k>; rel="next"'
    assert (
        rewrite_link(value, "https://gw") == '<https://gw/calls.json?q=a\\b&api_key=k>; rel="next"'
    )


async def test_no_hostile_link_reaches_the_client(make_gateway: Any, client: Any) -> None:
    """Through a real gateway, cached and fresh: the key never points anywhere else."""
    # A newline cannot travel inside a header value; a tab can.
    sendable = [u for u in HOSTILE_URLS if "\n" not in u]
    link = ", ".join(f'<{u}>; rel="r{i}"' for i, u in enumerate(sendable))
    link += ', <javascript:fetch("//evil.example")>; rel="x"'

    def answer(seen: Seen) -> Reply:
        if "page=2" in seen.target:  # only links that must be dropped
            return Reply(body=b"{}", headers=[("Link", b'<ftp://evil.example/x>; rel="next"')])
        return Reply(body=b'{"calls":[]}', headers=[("Link", link.encode())])

    async with scripted_upstream(answer) as upstream:
        settings = {"core_api_url": upstream.url, "core_api_v2_url": upstream.url}
        async with make_gateway(**settings) as gw:
            fresh = await client.get(f"{gw}/calls.json?api_key=k")
            cached = await client.get(f"{gw}/calls.json?api_key=k")
            emptied = await client.get(f"{gw}/calls.json?api_key=k&page=2")
    assert cached.headers["x-cache"] == "hit"
    assert emptied.status_code == 200
    assert "link" not in emptied.headers  # not an empty Link header
    for resp in (fresh, cached):
        assert resp.status_code == 200
        urls = re.findall(r"<([^>]*)>", resp.headers["link"])
        assert len(urls) == len(sendable)
        assert all(u.startswith(f"{gw}/calls.json?api_key=k") for u in urls), urls
        assert "evil" not in resp.headers["link"]
