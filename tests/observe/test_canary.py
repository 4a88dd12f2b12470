"""A secret canary through every route: it must appear nowhere the gateway writes.

The canary is used as the RTB ``key``, as ``api_key``, as a bearer token and as the Redis
password, on every route the gateway has, including answers that fail (4xx, upstream
5xx, timeout, unreachable upstream, unreachable Redis) and an unexpected exception whose
message and traceback carry the secret. Afterwards it is searched for in every log line
(all loggers, debug level, through the gateway's formatter), every response body and
header, ``/metrics`` and ``/stats``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.config import Secret, Settings
from gateway.ping.requests import Ping
from gateway.shield.base import Forward
from gateway.wire.answer import UpstreamAnswer
from tests.support.ports import free_port
from tests.support.servers import serve_app

CANARY = "cnry" + uuid.uuid4().hex  # a valid RTB key: letters and digits


class BrokenShield:
    """A shield with a bug: it raises with the ping (and a URL with a key) in the message."""

    def __init__(self, settings: Settings, metrics: Any) -> None:
        pass

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def answer(
        self, ping: Ping, deadline: float, forward: Forward
    ) -> tuple[UpstreamAnswer, str]:
        detail = f"http://user:{ping.key}@store.internal/get?api_key={ping.key}"
        raise RuntimeError(f"shield broke on {ping!r} via {detail}")

    async def confirmed(self, rtb_key: str, uuid: str, answer: UpstreamAnswer) -> None:
        return None


def _ping(**extra: str) -> dict[str, str]:
    return {"key": CANARY, "publisher_id": "pub1", "caller_number": "+18558485518", **extra}


async def _exercise_main(c: httpx.AsyncClient, url: str, seen: list[httpx.Response]) -> None:
    async def go(method: str, path: str, **kw: Any) -> httpx.Response:
        kw.setdefault("headers", {})["Authorization"] = f"Bearer {CANARY}"
        r = await c.request(method, url + path, **kw)
        seen.append(r)
        return r

    first = await go("POST", "/rtbs.json", params=_ping())
    assert first.status_code == 200, first.text
    await go("POST", "/rtbs.json", params=_ping())  # a repeat: shielded
    await go("POST", "/rtbs.json", json=_ping(caller_number="+18558485519", n="1"))
    await go("POST", "/rtbs.json", data=_ping(caller_number="+18558485520"))
    await go("POST", "/rtbs.json", params=_ping(caller_number="not-a-number"))
    await go(
        "POST",
        "/rtbs.json",
        content=f'{{"key": "{CANARY}", '.encode(),
        headers={"content-type": "application/json"},
    )
    await go("POST", "/rtbs.json", content=f"key={CANARY}", headers={"content-type": "text/plain"})
    await go("POST", "/rtbs.json", data=_ping(pad="x" * 70_000))
    await go("POST", "/rtbs.json", params=_ping(caller_number="+18558485521", sandbox_status="500"))
    await go(
        "POST", "/rtbs.json", params=_ping(caller_number="+18558485522", sandbox_outcome="garbage")
    )
    await go(
        "POST", "/rtbs.json", params=_ping(caller_number="+18558485523", sandbox_delay_ms="3000")
    )
    reservation = first.json()["uuid"]
    await go("PUT", f"/rtbs/{reservation}.json", params={"key": CANARY, "status": "confirmed"})
    await go("PATCH", f"/rtbs/{uuid.uuid4()}.json", json={"key": CANARY, "status": "confirmed"})
    await go("PATCH", "/rtbs/not-a-uuid.json", params={"key": CANARY, "status": "confirmed"})
    await go("GET", "/rtbs.json", params={"key": CANARY})
    await go("GET", "/nope/12345", params={"api_key": CANARY})
    for path in (
        "/calls.json",
        "/calls.xml",
        "/api/v2/calls.json",
        "/calls/not-a-uuid.json",
        "/numbers/1.json",
        "/api/v1/reports.json",
        "/company.json",
    ):
        await go("GET", path, params={"api_key": CANARY, "company_id": "1"})
    await go("POST", "/calls.json", params={"api_key": CANARY}, json={"api_key": CANARY})
    # Call data writing: the key in the path, in a JSON body, and in an invalid request.
    await go("GET", f"/data_writing/{CANARY}", params={"caller_number": "+18558485518"})
    await go("POST", "/data_writing", json={"key": CANARY, "caller_number": "+18558485518"})
    await go("POST", "/data_writing", data={"key": CANARY, "caller_number": "nope"})
    await go("GET", f"/data_writing/{CANARY}", params={"key": "other", "age": "1"})
    # Caller lists: the canary as postback key and (through go) as the Bearer secret.
    lists = "/api/v2/targets/1/caller_lists/suppressed"
    await go("GET", f"{lists}.json", params={"key": CANARY})
    await go("GET", f"{lists}/caller_list_numbers/+15855752500.json", params={"key": CANARY})
    await go(
        "POST",
        f"{lists}/caller_list_checks.json",
        params={"key": CANARY},
        json={"caller_list_check": {"number": "+15855752500"}},
    )
    await go("DELETE", f"{lists}.json", params={"key": CANARY})
    for path in ("/healthz", "/readyz", "/openapi.json"):
        await go("GET", path, params={"api_key": CANARY})


async def test_canary_appears_nowhere(sandbox_url: str, capture_logs: Any) -> None:
    logs = capture_logs("json", "debug")
    seen: list[httpx.Response] = []
    scraped: list[str] = []
    dead = f"http://127.0.0.1:{free_port()}"
    main = Settings.from_env(
        {},
        rtb_upstream_url=sandbox_url,
        core_api_url=sandbox_url,
        core_api_v2_url=sandbox_url,
        data_writing_url=sandbox_url,
        rtb_timeout_ms=1000,
    )
    broken = Settings.from_env({}, rtb_upstream_url=sandbox_url)
    unreachable = Settings.from_env(
        {},
        rtb_upstream_url=dead,
        core_api_url=dead,
        core_api_v2_url=dead,
        redis_url=Secret(f"redis://default:{CANARY}@127.0.0.1:{free_port()}/0"),
        redis_timeout_ms=50,
    )
    apps = [
        create_app(main),
        create_app(broken, shield_factory=BrokenShield),
        create_app(unreachable),
    ]
    async with httpx.AsyncClient(timeout=30) as plain:
        async with serve_app(apps[0]) as url:
            await _exercise_main(plain, url, seen)
            for path in ("/metrics", "/stats"):
                scraped.append((await plain.get(url + path, params={"api_key": CANARY})).text)
        async with serve_app(apps[1]) as url:
            r = await plain.post(url + "/rtbs.json", params=_ping())
            seen.append(r)
            assert r.status_code == 500
            assert r.json()["error"] == "internal_error"
            assert r.headers["x-request-id"]
            scraped += [(await plain.get(url + p)).text for p in ("/metrics", "/stats")]
        async with serve_app(apps[2]) as url:
            for caller in ("+18558485518", "+18558485518", "+18558485530"):
                r = await plain.post(url + "/rtbs.json", params=_ping(caller_number=caller))
                seen.append(r)
                assert r.status_code == 502, r.text
            r = await plain.get(url + "/calls.json", params={"api_key": CANARY})
            seen.append(r)
            scraped += [(await plain.get(url + p)).text for p in ("/metrics", "/stats")]

    statuses = {r.status_code for r in seen}
    assert {200, 400, 404, 405, 413, 415, 422, 500, 502, 504} <= statuses, statuses
    for r in seen:
        assert CANARY not in r.text, (r.request.url.path, r.status_code)
        assert CANARY not in json.dumps(list(r.headers.multi_items()))
    for text in scraped:
        assert CANARY not in text
    captured = logs.getvalue()
    # The logs did see the traffic and the traceback, and masked what they had to.
    lines = [json.loads(line) for line in captured.splitlines()]
    assert sum(1 for line in lines if line.get("msg") == "request") >= len(seen)
    errors = [line for line in lines if line.get("msg") == "unhandled error"]
    assert len(errors) == 1
    assert "RuntimeError: shield broke on Ping(key='***'" in errors[0]["exc"]
    assert "user:***@store.internal" in errors[0]["exc"]
    assert CANARY not in captured


@pytest.mark.parametrize("fmt", ["text"])
async def test_canary_appears_nowhere_in_text_logs(
    sandbox_url: str, capture_logs: Any, fmt: str
) -> None:
    logs = capture_logs(fmt, "debug")
    app = create_app(
        Settings.from_env({}, rtb_upstream_url=sandbox_url), shield_factory=BrokenShield
    )
    async with serve_app(app) as url, httpx.AsyncClient(timeout=30) as c:
        r = await c.post(url + "/rtbs.json", params=_ping())
        assert r.status_code == 500
        r = await c.post(url + "/rtbs.json", params=_ping(caller_number="bad"))
        assert r.status_code == 422
    captured = logs.getvalue()
    assert "Traceback" in captured
    assert "shield broke on Ping(key='***'" in captured
    assert CANARY not in captured
