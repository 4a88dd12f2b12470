"""Ping latency with and without a flood of ``/stats`` and ``/metrics``.

Starts the sandbox and one gateway (single process, as ``gateway serve`` runs by
default), then measures pings at a steady rate for ``--seconds``, first alone and then
while ``--connections`` keep-alive connections ask for ``/stats`` and ``/metrics`` back
to back. Prints the ping p50/p99 of both phases, what the flood got (200 and 503) and how
many bodies the gateway built (``gateway_ops_answers_total``). Extra gateway settings go
through ``--env NAME=VALUE``; ``--env GATEWAY_OPS_REFRESH_MS=0 --env
GATEWAY_OPS_MAX_RPS=100000`` approximates the gateway before the ops routes were cached
and paced.

    uv run python loadtests/ops_flood.py [--connections 60] [--rate 100] [--seconds 5]

Pings and flood come from this one process over raw sockets (no HTTP library's cost on
the client side); the numbers are from a loopback on whatever box runs it, so compare
phases of one run, never runs on different days.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import HOST, Processes, clean_env, free_port, http, signals_raise, wait_http

KEY = "7fc40342-f0a0-4e8f-bf09-b3887eedcb4a"
PATHS = ("/stats", "/metrics")


async def _answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return int(lines[0].split(b" ", 2)[1])


async def pings(port: int, rate: float, seconds: float, phase: int) -> list[float]:
    """Latencies (s) of pings sent at ``rate`` over 8 keep-alive connections, new callers."""
    latencies: list[float] = []
    lanes = 8
    end = time.monotonic() + seconds

    async def lane(n: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        i = n
        next_at = time.monotonic() + n / rate
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            caller = f"%2B1855{2 + phase}{i % 1_000_000:06d}"
            target = f"/rtbs.json?key={KEY}&publisher_id=pub&caller_number={caller}"
            started = time.monotonic()
            writer.write(
                f"POST {target} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\n\r\n".encode()
            )
            status = await _answer(reader)
            if status == 200:
                latencies.append(time.monotonic() - started)
            i += lanes
            next_at += lanes / rate
        writer.close()

    await asyncio.gather(*(lane(n) for n in range(lanes)))
    return latencies


async def flood(port: int, stop: asyncio.Event, seen: Counter[tuple[str, int]]) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    i = 0
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while not stop.is_set():
            path = PATHS[i % 2]
            i += 1
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            seen[(path, await _answer(reader))] += 1
    writer.close()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def measure(port: int, args: argparse.Namespace) -> None:
    quiet = await pings(port, args.rate, args.seconds, 0)
    stop = asyncio.Event()
    seen: Counter[tuple[str, int]] = Counter()
    flooders = [asyncio.create_task(flood(port, stop, seen)) for _ in range(args.connections)]
    loud = await pings(port, args.rate, args.seconds, 1)
    stop.set()
    await asyncio.gather(*flooders)
    print("| phase | pings | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: |")
    for name, values in (("alone", quiet), (f"{args.connections}-connection flood", loud)):
        p50, p99 = quantile(values, 0.5), quantile(values, 0.99)
        print(f"| {name} | {len(values)} | {p50:.2f} | {p99:.2f} |")
    for path in PATHS:
        print(f"{path}: {seen[(path, 200)]} answered 200, {seen[(path, 503)]} shed (503)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=60)
    parser.add_argument("--rate", type=float, default=100.0, help="pings per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    sandbox_port, port = free_port(), free_port()
    logs = Path(tempfile.mkdtemp(prefix="rtbgw-ops-flood-"))
    python = sys.executable
    with signals_raise(), Processes(logs) as procs:
        sb = procs.start(
            "sandbox",
            [python, "-m", "gateway", "sandbox", "--host", HOST, "--port", str(sandbox_port)],
        )
        wait_http(f"http://{HOST}:{sandbox_port}/healthz", sb)
        env = clean_env(
            {
                "GATEWAY_RTB_UPSTREAM_URL": f"http://{HOST}:{sandbox_port}",
                "GATEWAY_LOG_LEVEL": "warning",
                **extra,
            }
        )
        gw = procs.start(
            "gateway",
            [python, "-m", "gateway", "serve", "--host", HOST, "--port", str(port)],
            env=env,
        )
        wait_http(f"http://{HOST}:{port}/healthz", gw)
        asyncio.run(measure(port, args))
        # Let the build budget and the pacer's queue drain, so this read is built fresh.
        time.sleep(3.0)
        _, text = http("GET", f"http://{HOST}:{port}/metrics", timeout=30)
        for path in PATHS:
            built = re.search(
                rf'gateway_ops_answers_total{{route="{path}",source="built"}} (\S+)', text.decode()
            )
            print(f"{path}: bodies built {built.group(1) if built else 'n/a (not counted)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
