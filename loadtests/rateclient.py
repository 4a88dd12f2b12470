"""An open-loop, fixed-rate HTTP client: latency at a steady 1,000 req/s, not at saturation.

Why not wrk: wrk is closed-loop (each connection waits for its answer), so it measures
throughput, and its latency under saturation is mostly queueing. The question "how much
does the gateway add to a ping?" needs a fixed offered rate, as wrk2 does; wrk2 is not in
Debian, so this is a small stand-in. Requests are sent on a schedule (request k at
``start + k / rate``) whatever the server does, over a pool of keep-alive connections
that grows instead of queueing, and latency is taken from the *scheduled* time, so a
server stall shows up in the tail instead of silently lowering the rate (coordinated
omission). Latency from the actual send is reported too.

The event loop's timers have about a millisecond of granularity, so a request may leave
up to ~1 ms after its slot; that lateness is the same whichever server is measured, and
``loadtests/bench`` compares servers measured by this same client on the same core.

Prints one JSON object. Only talks to 127.0.0.1.

    python loadtests/rateclient.py --port 8080 --rate 1000 --duration 10 --mode unique
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from typing import Any

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a gateway dependency
    uvloop = None  # type: ignore[assignment]

_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
CODES = ("212", "213", "305", "312", "404", "415", "512", "617",
         "702", "713", "720", "818", "917", "206", "303")  # fmt: skip
KEY = "7fc40342-f0a0-4e8f-bf09-b3887eedcb4a"


def caller(n: int) -> str:
    """The same numbering as bench.lua and locustfile.py."""
    rest = n // 15
    return f"+1{CODES[n % 15]}{200 + (rest // 10_000) % 800:03d}{rest % 10_000:04d}"


def ping_request(n: int, host: str, port: int) -> bytes:
    body = (
        f'{{"key":"{KEY}","publisher_id":"pub_{1000 + n % 24}","caller_number":"{caller(n)}",'
        f'"caller_zip":"{10000 + n % 89999:05d}","caller_state":"CA","utm_source":"google",'
        f'"utm_campaign":"medicare_q4_2026","age":{21 + n % 60},"tcpa_consent":true}}'
    ).encode()
    head = (
        f"POST /rtbs.json HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time; Content-Length only."""

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.need: int | None = None
        self.status = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None:
            return
        if self.need is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            match = _LENGTH.search(head)
            if match is None:
                self._fail(ConnectionError("answer without Content-Length"))
                return
            self.status = int(head[9:12])
            self.need = end + 4 + int(match.group(1))
        if len(self.buf) >= self.need:
            del self.buf[: self.need]
            self.need = None
            waiter, self.waiter = self.waiter, None
            if not waiter.done():
                waiter.set_result(self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError("connection closed"))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)

    def at(q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1e6

    return {
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "max_us": values[-1] * 1e6,
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    host = "127.0.0.1"
    total = int(args.rate * (args.warmup + args.duration))
    if args.mode == "repeat":
        cycle = [ping_request(args.start + i, host, args.port) for i in range(args.callers)]
        requests = [cycle[k % len(cycle)] for k in range(total)]
    else:
        requests = [ping_request(args.start + k, host, args.port) for k in range(total)]
    idle: list[Connection] = []

    async def connect() -> Connection:
        _, proto = await loop.create_connection(Connection, host, args.port)
        return proto

    for _ in range(args.connections):
        idle.append(await connect())
    corrected: list[float] = []
    service: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}
    opened = args.connections
    warm_until = int(args.rate * args.warmup)
    clock = time.perf_counter

    async def fire(k: int, data: bytes, scheduled: float) -> None:
        nonlocal errors, opened
        conn = None
        while idle and conn is None:
            candidate = idle.pop()
            conn = None if candidate.closed else candidate
        if conn is None:
            opened += 1
            conn = await connect()
        sent = clock()
        try:
            status = await asyncio.wait_for(conn.send(data), args.timeout)
        except (TimeoutError, ConnectionError, OSError):
            errors += 1
            if conn.transport is not None:
                conn.transport.close()
            return
        done = clock()
        idle.append(conn)
        statuses[status] = statuses.get(status, 0) + 1
        if k >= warm_until:
            corrected.append(done - scheduled)
            service.append(done - sent)

    tasks = []
    begin = clock() + 0.05
    interval = 1.0 / args.rate
    for k, data in enumerate(requests):
        scheduled = begin + k * interval
        delay = scheduled - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(fire(k, data, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = clock() - begin
    for conn in idle:
        if conn.transport is not None:
            conn.transport.close()
    return {
        "rate": args.rate,
        "sent": total,
        "measured": len(corrected),
        "achieved_rps": total / elapsed,
        "errors": errors,
        "statuses": statuses,
        "connections_opened": opened,
        "from_schedule": _percentiles(corrected),
        "from_send": _percentiles(service),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    p.add_argument("--mode", choices=("unique", "repeat"), default="unique")
    p.add_argument("--callers", type=int, default=100, help="callers cycled in repeat mode")
    p.add_argument("--start", type=int, default=0, help="first caller number")
    p.add_argument("--connections", type=int, default=32, help="pre-opened connections")
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args(argv)
    factory = uvloop.new_event_loop if uvloop is not None else None
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(run(args))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
