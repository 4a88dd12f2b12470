"""Fixtures for auctions: scriptable buyers on real sockets and auctions files on disk.

A :class:`Buyers` server is a stand-in Retreaver RTB endpoint whose behaviour is chosen
per postback key (payout, delay, hang, no target, an error status), so one server can
play several campaigns and several servers several upstreams. It records every request
(with the key it carried) and every answer's exact bytes, so tests assert on what each
destination received and that the publisher got the winner's bytes unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid as uuidlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.servers import serve_app


@dataclass
class Bid:
    payout: float | None = 10.0
    delay_s: float = 0.0
    hang: bool = False
    no_target: bool = False
    status: int = 200


@dataclass
class Seen:
    method: str
    path: str
    fields: dict[str, Any]
    answer: bytes = b""


@dataclass
class Buyers:
    bids: dict[str, Bid] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    reservations: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # uuid -> key
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    def keys_seen(self, path: str = "/rtbs.json") -> list[str]:
        return [s.fields.get("key", "") for s in self.seen if s.path == path]

    def answer_for(self, key: str) -> bytes:
        return next(s.answer for s in self.seen if s.fields.get("key") == key)

    def uuid_for(self, key: str) -> str:
        return json.loads(self.answer_for(key))["uuid"]

    async def create(self, request: Request) -> Response:
        fields = json.loads(await request.body() or b"{}")
        seen = Seen("POST", "/rtbs.json", fields)
        self.seen.append(seen)
        bid = self.bids.get(fields.get("key", ""), Bid(no_target=True))
        if bid.hang:
            await self.release.wait()
        if bid.delay_s:
            await asyncio.sleep(bid.delay_s)
        if bid.status != 200:
            body = b'{"error":"buyer error"}'
        elif bid.no_target:
            body = b'{"status": "no-target"}'
        else:
            rid = str(uuidlib.uuid4())
            expires = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            # Deliberately spaced and ordered unlike msgspec would write it: byte-for-byte.
            payout = json.dumps(bid.payout)
            body = (
                f'{{"uuid": "{rid}", "status": "reserved", "retreaver_payout": {payout}, '
                f'"inbound_number": "+18005550100", "expires_at": "{expires}"}}'
            ).encode()
            self.reservations[rid] = (fields["key"], body)
        seen.answer = body
        return Response(body, status_code=bid.status, media_type="application/json")

    async def confirm(self, request: Request) -> Response:
        fields = json.loads(await request.body() or b"{}")
        rid = request.path_params["uuid"]
        self.seen.append(Seen(request.method, f"/rtbs/{rid}.json", fields))
        found = self.reservations.get(rid)
        if found is None or found[0] != fields.get("key"):
            return Response(b'{"error":"not found"}', 404, media_type="application/json")
        data = json.loads(found[1])
        data["status"] = "confirmed"
        return Response(json.dumps(data).encode(), media_type="application/json")


@contextlib.asynccontextmanager
async def buyers_server(bids: dict[str, Bid] | None = None) -> AsyncIterator[Buyers]:
    buyers = Buyers(bids=dict(bids or {}))
    app = Starlette(
        routes=[
            Route("/rtbs.json", buyers.create, methods=["POST"]),
            Route("/rtbs/{uuid}.json", buyers.confirm, methods=["PUT", "PATCH"]),
        ]
    )
    async with serve_app(app) as url:
        buyers.url = url
        try:
            yield buyers
        finally:
            buyers.release.set()  # hanging answers end so the server can stop


@pytest.fixture
async def buyers() -> AsyncIterator[Buyers]:
    async with buyers_server() as server:
        yield server


def toml_value(value: Any) -> str:
    return json.dumps(value)  # strings, numbers and booleans read the same in TOML


def auctions_toml(auctions: list[dict[str, Any]]) -> str:
    """``[[auctions]]`` and ``[[auctions.destinations]]`` text for plain dicts."""
    lines: list[str] = []
    for auction in auctions:
        lines.append("[[auctions]]")
        for name, value in auction.items():
            if name != "destinations":
                lines.append(f"{name} = {toml_value(value)}")
        for destination in auction.get("destinations", []):
            lines.append("[[auctions.destinations]]")
            for name, value in destination.items():
                lines.append(f"{name} = {toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


WriteAuctions = Callable[[list[dict[str, Any]]], str]


@pytest.fixture
def write_auctions(tmp_path: Path) -> WriteAuctions:
    def write(auctions: list[dict[str, Any]]) -> str:
        path = tmp_path / "auctions.toml"
        path.write_text(auctions_toml(auctions))
        return str(path)

    return write


CALLER = "+18558485518"


def ping(key: str, caller: str = CALLER, **tags: str) -> dict[str, str]:
    return {"key": key, "publisher_id": "pub-1", "caller_number": caller, **tags}


async def wait_for(check: Callable[[], Any], timeout_s: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy (work done in the background)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def metric(client: httpx.AsyncClient, gw: str, line_start: str) -> float:
    text = (await client.get(f"{gw}/metrics")).text
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
