"""A flood of ``/stats`` and ``/metrics`` must not cost pings their answers.

Sixty keep-alive connections ask for the two ops routes back to back, as fast as they are
answered, against a real gateway process, while pings arrive at a steady rate. The
gateway's own counter of built bodies (``gateway_ops_answers_total{source="built"}``)
must show at most the burst of fresh builds plus one per refresh interval, however many
answers the flood got; every ping must still be answered 200. The ping p50 and p99
without and with the flood are printed as figures (the box is shared: numbers, not
assertions).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from gateway.observe.ops_cache import FRESH_BUILDS
from tests.conftest import RTB_KEY
from tests.faults.conftest import Record
from tests.faults.flood import _answer
from tests.faults.procs import Load, gateway, percentile, running, sandbox, session, until

pytestmark = pytest.mark.slow

CONNECTIONS = 60
PING_RATE = 100.0
PHASE_S = 3.0
REFRESH_S = 1.0
PATHS = ("/stats", "/metrics")


async def ops_flood(port: int, stop: asyncio.Event, answered: Counter[tuple[str, int]]) -> None:
    """One keep-alive connection asking for /stats and /metrics in turn until ``stop``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        i = 0
        while not stop.is_set():
            path = PATHS[i % 2]
            i += 1
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            status, close = await _answer(reader)
            answered[(path, status)] += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _ping_url(base: str, phase: int) -> Callable[[int], str]:
    """A new caller per ping (each one forwarded), different in each phase."""

    def url(i: int) -> str:
        caller = f"%2B1855{2 + phase}{i % 1_000_000:06d}"
        return f"{base}/rtbs.json?key={RTB_KEY}&publisher_id=pub&caller_number={caller}"

    return url


async def _pings(base: str, phase: int, also: asyncio.Event | None = None) -> Load:
    load = Load()
    stop = asyncio.Event()
    async with session() as s:
        runner = asyncio.create_task(load.run(s, _ping_url(base, phase), PING_RATE, stop))
        await asyncio.sleep(PHASE_S)  # the phase's length: a duration, not a synchronisation
        stop.set()
        if also is not None:
            also.set()
        await runner
    return load


def _answers(text: str, route: str, source: str) -> float:
    pattern = rf'gateway_ops_answers_total{{route="{re.escape(route)}",source="{source}"}} (\S+)'
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


async def test_an_ops_flood_builds_once_per_interval_and_pings_still_answer(
    figure: Record,
) -> None:
    sb = sandbox()
    gw = gateway({"GATEWAY_RTB_UPSTREAM_URL": sb.url, "GATEWAY_OPS_REFRESH_MS": "1000"})
    async with running(sb, gw), httpx.AsyncClient(timeout=10) as client:
        quiet = await _pings(gw.url, 0)

        answered: Counter[tuple[str, int]] = Counter()
        stop = asyncio.Event()
        started = time.monotonic()
        flooders = [
            asyncio.create_task(ops_flood(gw.port, stop, answered)) for _ in range(CONNECTIONS)
        ]
        loud = await _pings(gw.url, 1, also=stop)
        await asyncio.gather(*flooders)
        flood_s = time.monotonic() - started

        # Once /metrics counts every answer the flood got, its numbers are complete.
        text = ""

        async def counted() -> bool:
            nonlocal text
            text = (await client.get(gw.url + "/metrics")).text
            return all(
                _answers(text, path, "built") + _answers(text, path, "kept")
                >= answered[(path, 200)]
                for path in PATHS
            )

        await until(counted, within=30)

    for load in (quiet, loud):
        assert load.results, "no pings were sent"
        statuses = Counter(r.status for r in load.results)
        assert statuses == {200: len(load.results)}, statuses
    allowed = FRESH_BUILDS + math.ceil(flood_s / REFRESH_S) + 1
    for path in PATHS:
        built = _answers(text, path, "built")
        figure(f"{path} answers to the flood (200)", answered[(path, 200)])
        figure(f"{path} shed (503)", answered[(path, 503)])
        figure(f"{path} bodies built", int(built))
        assert answered[(path, 200)] > allowed  # the flood asked far more than was built
        assert built <= allowed + 1, (path, built, allowed)  # +1: the read that counted
    for name, load in (("without", quiet), ("with", loud)):
        latencies = [r.latency_s for r in load.results]
        figure(f"ping p50 {name} the flood (ms)", percentile(latencies, 0.5) * 1000)
        figure(f"ping p99 {name} the flood (ms)", percentile(latencies, 0.99) * 1000)
    figure("flood length (s)", flood_s)
