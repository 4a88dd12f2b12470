"""The Core API client's boundary (issue 15): answer size, unsendable headers, and a 429
quieting only the credentials that got it. Real gateway, scripted upstream on a socket."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gateway.coreapi.client import MAX_QUIET_CREDENTIALS, CoreApiClient, credentials_digest
from gateway.wire.answer import UpstreamAnswer, content_type_for, deliverable
from tests.conftest import MakeGateway
from tests.support.scripted_upstream import Reply, Seen, scripted_upstream


def _core(url: str, **settings: Any) -> dict[str, Any]:
    return {"core_api_url": url, "core_api_v2_url": url, **settings}


async def test_an_answer_over_the_limit_is_502_naming_the_setting(
    make_gateway: MakeGateway, client: httpx.AsyncClient
) -> None:
    body = b"[" + b"0," * 40_000 + b"0]"

    def answer(seen: Seen) -> Reply:
        return Reply(body=body, chunked="chunked" in seen.target)

    async with (
        scripted_upstream(answer) as upstream,
        make_gateway(**_core(upstream.url, core_api_max_answer_bytes=50_000)) as gw,
    ):
        declared = await client.get(f"{gw}/calls.json?api_key=k&declared=1")
        chunked = await client.get(f"{gw}/calls.json?api_key=k&chunked=1")
        fits = await client.get(f"{gw}/calls.json?api_key=k&declared=1&page=2")
    for refused in (declared, chunked):
        assert refused.status_code == 502
        assert refused.json()["error"] == "bad_gateway"
        assert "GATEWAY_CORE_API_MAX_ANSWER_BYTES" in refused.json()["message"]
    assert fits.status_code == 502  # same size, same limit: the limit is not a fluke
    async with (
        scripted_upstream(answer) as upstream,
        make_gateway(**_core(upstream.url)) as gw,
    ):
        default = await client.get(f"{gw}/calls.json?api_key=k&chunked=1")
    assert default.status_code == 200
    assert default.content == body


async def test_unsendable_upstream_headers_are_dropped_before_caching(
    make_gateway: MakeGateway, client: httpx.AsyncClient
) -> None:
    def answer(_seen: Seen) -> Reply:
        return Reply(
            body=b'{"calls":[]}',
            headers=[
                ("Content-Type", "application/json; note=\u2603".encode()),
                ("Link", '<http://up/calls.json?q=\u2014>; rel="next"'.encode()),
            ],
        )

    async with scripted_upstream(answer) as upstream, make_gateway(**_core(upstream.url)) as gw:
        first = await client.get(f"{gw}/calls.json?api_key=k")
        cached = await client.get(f"{gw}/calls.json?api_key=k")
        sent = len(upstream.seen)
    for resp in (first, cached):
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/json"
        assert "link" not in resp.headers
    assert cached.headers["x-cache"] == "hit"
    assert sent == 1


async def test_a_429_quiets_only_its_own_credentials(
    make_gateway: MakeGateway, client: httpx.AsyncClient
) -> None:
    def answer(seen: Seen) -> Reply:
        if "api_key=slow" in seen.target:
            return Reply(429, b'{"error":"throttled"}', [("Retry-After", b"600")])
        return Reply(body=b"{}")

    async with (
        scripted_upstream(answer) as upstream,
        make_gateway(
            **_core(upstream.url, core_api_max_quiet_s=30, core_api_max_retry_wait_s=0)
        ) as gw,
    ):
        first = await client.get(f"{gw}/company.json?api_key=slow")
        others = await asyncio.gather(
            *(client.get(f"{gw}/company.json?api_key=fast{i}") for i in range(8))
        )
        # The same key spelled with a percent-escape is still the same client.
        again = await client.get(f"{gw}/company.json?api_key=%73low&x=1")
        sent = [s.target for s in upstream.seen]
    assert first.status_code == 429
    assert [o.status_code for o in others] == [200] * 8
    assert again.status_code == 429
    assert again.json()["error"] == "rate_limited"
    assert int(again.headers["retry-after"]) <= 30  # GATEWAY_CORE_API_MAX_QUIET_S caps 600
    assert sum("slow" in t or "%73low" in t for t in sent) == 1


def test_credentials_digest_sees_only_credentials() -> None:
    base = credentials_digest(b"api_key=a&company_id=1")
    assert base == credentials_digest(b"company_id=2&api_key=a&page=3")
    assert base == credentials_digest(b"api_key=%61")
    assert base != credentials_digest(b"api_key=b&company_id=1")
    assert base != credentials_digest(b"key=a")
    assert base != credentials_digest(b"api_key=a", "Bearer x")
    assert credentials_digest(b"", "Bearer x") != credentials_digest(b"", "Bearer y")


async def test_the_quiet_map_drops_lapsed_entries_and_is_capped() -> None:
    throttled = UpstreamAnswer(429, b"", "", (("Retry-After", "1"),))
    lapsing = CoreApiClient("http://a", "http://b", max_quiet_s=0)
    for i in range(1000):
        lapsing._throttled_by(b"%d" % i, throttled)
    assert lapsing.quieted <= 2
    lasting = CoreApiClient("http://a", "http://b", max_quiet_s=60)
    for i in range(MAX_QUIET_CREDENTIALS + 500):
        lasting._throttled_by(b"%d" % i, throttled)
    assert lasting.quieted == MAX_QUIET_CREDENTIALS
    assert lasting._quiet_for(b"%d" % (MAX_QUIET_CREDENTIALS + 499)) > 0
    assert lasting._quiet_for(b"0") == 0  # the oldest was forgotten first


def test_header_values_are_checked_for_what_a_client_can_receive() -> None:
    assert deliverable("application/json; charset=utf-8")
    assert deliverable("caf\u00e9")  # latin-1 is fine
    assert not deliverable("\u2603")
    assert not deliverable("a\r\nX-Injected: 1")
    assert not deliverable("a\0b")
    assert content_type_for("text/\u2603", b' {"a":1}') == "application/json"
    assert content_type_for("text/\u2603", b"<xml/>") == "application/octet-stream"
    assert content_type_for(None, b"", default="") == ""
