"""CPU per uncached Core API lookup through the gateway: what the Core API client costs.

Why this exists: the Core API client moved from aiohttp to httpx2 (issue 21). Lookups are
cached and coalesced, so this client is off the ping path, but an uncached lookup still
pays for it; this prints that price so a change of client is judged by a number, not by
reputation. Run it on two commits to compare them: it only needs ``gateway serve`` and
``loadtests/harness.py``, which both sides have.

What it does:

* starts an upstream in its own process (this script with ``--upstream``): a few dozen
  lines of asyncio answering every request with the same ~400-byte JSON, keep-alive,
  so the upstream's CPU is not counted and costs next to nothing;
* starts ``gateway serve`` (one worker, lookup cache off: ``GATEWAY_LOOKUP_CACHE_TTL_S=0``)
  with the Core API pointed at it;
* sends ``--warmup`` then ``--requests`` lookups of ``GET /company.json`` with a distinct
  query each (no two can be coalesced), ``--concurrency`` at a time over keep-alive
  connections, from raw sockets in this process;
* prints the gateway process's user + system CPU per lookup in microseconds (from
  ``/proc``), and the same for ``GET /healthz`` as the floor that the gateway's own HTTP
  handling costs without any upstream call. The difference is the lookup path's price.

CPU time, not wall time, so a busy machine skews it less; it is still a rough figure on a
shared box (caches, frequency scaling). Everything listens on 127.0.0.1; every process
started here is stopped on exit (``harness.Processes``).

Usage::

    uv run python loadtests/lookup_bench.py [--requests N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    HOST,
    Processes,
    clean_env,
    cpu_seconds,
    free_port,
    signals_raise,
    wait_http,
    wait_tcp,
)

BODY = (
    b'{"company":{"id":1,"name":"Bench Co","time_zone":"Eastern Time (US & Canada)",'
    b'"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z",'
    b'"calls_count":12345,"numbers_count":67,"campaigns_count":8,"affiliates_count":9,'
    b'"address":{"street":"1 Bench Way","city":"Halifax","region":"NS","country":"CA"},'
    b'"settings":{"recording":true,"transcription":false,"caller_id":"+18005550100"}}}'
)
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY),
    BODY,
)


# -- the upstream (a child process) --------------------------------------------------------


async def _upstream(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(ANSWER)
        writer.close()

    server = await asyncio.start_server(handle, HOST, port, backlog=1024)
    async with server:
        await server.serve_forever()


# -- the load (this process) ---------------------------------------------------------------


async def _drive(port: int, targets: list[bytes], concurrency: int) -> int:
    """Send each target once over ``concurrency`` keep-alive connections; count 200s."""
    queue = iter(targets)
    ok = 0

    async def connection() -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for target in queue:
                writer.write(b"GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % target)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await asyncio.wait_for(reader.readexactly(length), 30)
                ok += head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return ok


def _cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (a supervisor and its worker, if any)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids.extend(int(k) for k in (task / "children").read_text().split())
    total = 0.0
    for one in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(one)
    return total


def _measure(pid: int, port: int, targets: list[bytes], concurrency: int) -> tuple[float, int]:
    before = _cpu(pid)
    ok = asyncio.run(_drive(port, targets, concurrency))
    return (_cpu(pid) - before) / len(targets) * 1e6, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream is not None:
        asyncio.run(_upstream(args.upstream))
        return 0

    with (
        signals_raise(),
        tempfile.TemporaryDirectory(prefix="lookup-bench-") as tmp,
        Processes(Path(tmp)) as procs,
    ):
        up_port = free_port()
        upstream = procs.start("upstream", [sys.executable, __file__, "--upstream", str(up_port)])
        wait_tcp(up_port, upstream)
        gw_port = free_port()
        up_url = f"http://{HOST}:{up_port}"
        env = clean_env(
            {
                "GATEWAY_HOST": HOST,
                "GATEWAY_PORT": str(gw_port),
                "GATEWAY_WORKERS": "1",
                "GATEWAY_LOG_LEVEL": "warning",
                "GATEWAY_RTB_UPSTREAM_URL": up_url,
                "GATEWAY_CORE_API_URL": up_url,
                "GATEWAY_CORE_API_V2_URL": up_url,
                "GATEWAY_LOOKUP_CACHE_TTL_S": "0",
            }
        )
        gateway = procs.start("gateway", [sys.executable, "-m", "gateway", "serve"], env=env)
        wait_http(f"http://{HOST}:{gw_port}/healthz", gateway)

        def lookups(start: int, n: int) -> list[bytes]:
            return [b"/company.json?api_key=bench&n=%d" % i for i in range(start, start + n)]

        _measure(gateway.pid, gw_port, lookups(0, args.warmup), args.concurrency)
        floor, floor_ok = _measure(
            gateway.pid, gw_port, [b"/healthz"] * args.requests, args.concurrency
        )
        lookup, lookup_ok = _measure(
            gateway.pid, gw_port, lookups(args.warmup, args.requests), args.concurrency
        )
        if lookup_ok != args.requests or floor_ok != args.requests:
            print(f"errors: {args.requests - lookup_ok} lookups, {args.requests - floor_ok}")
            print(gateway.tail(), file=sys.stderr)
            return 1
        print(f"requests {args.requests}, concurrency {args.concurrency}, cache off")
        print("| path | gateway CPU per request (us) |\n| --- | ---: |")
        print(f"| GET /healthz (floor) | {floor:.0f} |")
        print(f"| GET /company.json, uncached | {lookup:.0f} |")
        print(f"| the lookup path above the floor | {lookup - floor:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
