"""Clients that never read their answers: what they cost a gateway, and whether it recovers.

The attack of issue 20 (row 1), from a script: ``--connections`` sockets, each with a small
receive buffer, pipeline a few large answers (``--fill``) and then pings (one caller per
socket, so all but the first are shield hits) and never read a byte. Their answers fill
the kernel's buffers, then the gateway's; a gateway without a send timeout keeps each
blocked request in flight, its pipelined requests parsed and queued, for as long as the
socket stays open.

Printed, once a second: the gateway's RSS, its in-flight gauge and what a fresh client's
ping gets (``200``, or ``503`` when the in-flight cap is held by the non-readers). Start it
against a gateway it starts itself (with the sandbox as upstream)::

    uv run python loadtests/nonreading.py --connections 1000 --hold 30

``--env GATEWAY_CLIENT_TIMEOUT_S=5`` and the like pass settings to that gateway. This is a
measurement, not a benchmark: it needs no quiet machine, but it does use ~1 GB of memory
per 1,000 connections on a gateway that does not defend itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtests.harness import HOST, Processes, clean_env, free_port, http, wait_http

KEY = "7fc40342-f0a0-4e8f-bf09-b3887eedcb4a"


def ping(i: int, port: int) -> bytes:
    target = f"/rtbs.json?key={KEY}&publisher_id=pub&caller_number=%2B18552{i % 1_000_000:06d}"
    return f"POST {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Length: 0\r\n\r\n".encode()


async def non_reader(i: int, port: int, size: int, fill: int, held: list[socket.socket]) -> None:
    """Open a socket with a tiny receive buffer, pipeline ``size`` bytes of pings, never read.

    ``fill`` requests for ``/openapi.json`` (~200 kB answers, never shed) go first: they
    fill the kernel's send buffer (autotuned up to ``tcp_wmem``'s 4 MB) in a few requests,
    so the pings after them find the gateway's own buffer full.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (HOST, port))
    held.append(sock)
    one = ping(i, port)
    block = one * max(1, 65536 // len(one))
    opening = f"GET /openapi.json HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode() * fill
    with contextlib.suppress(OSError):
        if opening:
            await loop.sock_sendall(sock, opening)
        for _ in range(max(1, size // len(block))):
            await loop.sock_sendall(sock, block)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def gauge(url: str, name: str) -> float | None:
    try:
        _, body = http("GET", url + "/metrics", timeout=5)
    except OSError:
        return None
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def probe(url: str) -> int:
    try:
        return http(
            "POST", f"{url}/rtbs.json?key={KEY}&publisher_id=p&caller_number=%2B18558485518"
        )[0]
    except OSError:
        return 0


async def attack(args: argparse.Namespace, url: str, pid: int, port: int, round_: int) -> None:
    """One wave of non-readers, held ``--hold`` seconds, then closed by us."""
    held: list[socket.socket] = []
    started = time.monotonic()
    senders = [
        asyncio.create_task(non_reader(i, port, args.bytes, args.fill, held))
        for i in range(args.connections)
    ]
    peak = 0.0
    while time.monotonic() - started < args.hold:
        await asyncio.sleep(1)
        rss = rss_mb(pid)
        peak = max(peak, rss)
        statuses = await asyncio.to_thread(lambda: [probe(url) for _ in range(5)])
        in_flight = await asyncio.to_thread(gauge, url, "gateway_http_requests_in_flight")
        dropped = await asyncio.to_thread(
            gauge, url, 'gateway_protect_refusals_total{reason="send_timeout"}'
        )
        print(
            f"t={time.monotonic() - started:5.1f}s rss {rss:6.0f} MB  in flight {in_flight}"
            f"  open {len(held)}  dropped {dropped}  pings {statuses}"
        )
    _, text = http("GET", url + "/metrics", timeout=5)
    for line in text.decode().splitlines():
        if line.startswith("gateway_protect_refusals_total{") and not line.endswith(" 0.0"):
            print("  " + line)
    for task in senders:
        task.cancel()
    await asyncio.gather(*senders, return_exceptions=True)
    for sock in held:
        sock.close()
    await asyncio.sleep(2)
    print(
        f"round {round_}, after closing them: rss {rss_mb(pid):.0f} MB (peak {peak:.0f} MB), "
        f"ping {probe(url)}"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--bytes", type=int, default=256 * 1024, help="pipelined per socket")
    parser.add_argument("--fill", type=int, default=24, help="/openapi.json first, per socket")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to keep them open")
    parser.add_argument("--rounds", type=int, default=1, help="waves, one after another")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    with Processes(Path(tempfile.mkdtemp(prefix="nonreading-"))) as procs:
        sb_port, gw_port = free_port(), free_port()
        py = sys.executable
        sandbox = procs.start(
            "sandbox", [py, "-m", "gateway", "sandbox", "--host", HOST, "--port", str(sb_port)]
        )
        env = clean_env(
            {
                "GATEWAY_RTB_UPSTREAM_URL": f"http://{HOST}:{sb_port}",
                "GATEWAY_LOG_LEVEL": "warning",
                "GATEWAY_DRAIN_DELAY_S": "0",
                **extra,
            }
        )
        argv = [py, "-m", "gateway", "serve", "--host", HOST, "--port", str(gw_port)]
        gw = procs.start("gateway", argv, env=env)
        url = f"http://{HOST}:{gw_port}"
        wait_http(f"http://{HOST}:{sb_port}/healthz", sandbox)
        wait_http(url + "/healthz", gw)
        print(f"settings: {extra or 'defaults'}")
        print(f"before: rss {rss_mb(gw.pid):.0f} MB, ping {probe(url)}")
        for round_ in range(1, args.rounds + 1):
            await attack(args, url, gw.pid, gw_port, round_)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
