"""Suite item 7: a rolling restart of two replicas behind a round-robin balancer, under load.

Each replica in turn gets SIGTERM: its ``/readyz`` turns 503, the balancer (checking
every 100 ms) stops sending to it, it keeps serving for its drain delay, finishes what
it has, exits 0, and a fresh replica takes its place. No request may fail.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.conftest import RTB_KEY
from tests.faults.conftest import Record
from tests.faults.procs import Load, Proc, gateway, p99_ms, sandbox, session
from tests.faults.rr_proxy import RoundRobin

pytestmark = pytest.mark.slow

RATE = 150.0


def replica(upstream: str) -> Proc:
    return gateway({"GATEWAY_RTB_UPSTREAM_URL": upstream, "GATEWAY_DRAIN_DELAY_S": "1"})


async def test_rolling_restart_loses_nothing(figure: Record) -> None:
    sb = sandbox()
    replicas = [replica(sb.url), replica(sb.url)]
    started: list[Proc] = [sb, *replicas]
    exit_codes: list[int] = []
    load = Load()
    stop = asyncio.Event()
    try:
        await asyncio.gather(*(p.wait_ready() for p in started))
        lb = RoundRobin([r.url for r in replicas])
        async with lb.serve() as url, session() as http:

            def make(i: int) -> str:
                number = f"%2B1855400{i % 10000:04d}"
                return f"{url}/rtbs.json?key={RTB_KEY}&publisher_id=pub&caller_number={number}"

            runner = asyncio.create_task(load.run(http, make, RATE, stop))
            await asyncio.sleep(2)
            for i, old in enumerate(list(replicas)):
                old.signal(signal.SIGTERM)
                exit_codes.append(await old.wait(60))
                new = replica(sb.url)
                started.append(new)
                await new.wait_ready("/readyz")
                lb.backends[i] = new.url
                await lb.check()
                await asyncio.sleep(1)
            await asyncio.sleep(1)
            stop.set()
            await runner
    finally:
        for p in started:
            p.stop()
    statuses: dict[int, int] = {}
    for r in load.results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    figure("requests during the rolling restart", len(load.results))
    figure("answers by status", dict(sorted(statuses.items())))
    figure("failed requests (target 0)", len(load.results) - statuses.get(200, 0))
    figure("p99 (ms)", p99_ms(load.results))
    figure("replica exit codes", exit_codes)
    figure("requests per backend", sorted(lb.forwarded.values()))
    assert exit_codes == [0, 0]
    assert statuses == {200: len(load.results)}, load.errors[:5]
