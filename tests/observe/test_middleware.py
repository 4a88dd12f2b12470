"""The request middleware: request ids, status labels for failures, in-flight accounting."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.config import Settings
from tests.observe.test_canary import BrokenShield
from tests.support.servers import serve_app


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name
    }


async def test_failures_are_labelled_by_template_and_real_status(sandbox_url: str) -> None:
    app = create_app(
        Settings.from_env({}, rtb_upstream_url=sandbox_url), shield_factory=BrokenShield
    )
    ping = {"key": "k1", "publisher_id": "p1", "caller_number": "+18558485518"}
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as c:
        r = await c.post("/rtbs.json", params=ping, headers={"X-Request-ID": "abc-123"})
        assert r.status_code == 500
        assert r.headers["x-request-id"] == "abc-123"
        # The middleware's own 500 is a publisher answer like any other: coded and recorded.
        assert r.headers["x-outcome"] == "upstream_error"
        assert r.json() == {
            "error": "internal_error",
            "message": "the gateway failed; see its logs",
        }
        r = await c.get("/rtbs/1234.json", headers={"X-Request-ID": "bad id!"})
        assert r.status_code == 405
        assert r.headers["x-request-id"] != "bad id!"
        assert len(r.headers["x-request-id"]) == 32
        r = await c.get("/calls/12345.json", params={"api_key": "x"})
        assert r.status_code == 404
        text = (await c.get("/metrics")).text
    outcomes = _samples(text, "gateway_outcomes_total")
    assert outcomes[(("outcome", "upstream_error"), ("route", "/rtbs.json"))] == 1
    counts = _samples(text, "gateway_http_requests_total")
    assert counts[(("method", "POST"), ("route", "/rtbs.json"), ("status", "500"))] == 1
    assert counts[(("method", "GET"), ("route", "/rtbs/{uuid}.json"), ("status", "405"))] == 1
    assert not any(dict(k)["status"] == "499" for k in counts)
    assert all("1234" not in dict(k)["route"] for k in counts)
    # Only the scrape itself is in flight; the failed request was not left counted.
    assert _samples(text, "gateway_http_requests_in_flight")[()] == 1
