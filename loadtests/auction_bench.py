"""What does an auction cost, and does it keep its budget when a destination hangs?

Why this exists: a parallel auction sends one ping per destination and must answer the
publisher within ``budget_ms`` + 20 ms even when one destination never answers; a 5-leg
auction should cost at most ~2.5x the CPU of one plain forward; and under load it must
never confirm a reservation that lost. This script measures all three, on real processes:

- the sandbox (``python -m gateway sandbox``) plays five campaigns that bid at once;
- a "hanging" upstream in this process accepts connections and never answers;
- one gateway (``python -m gateway serve``) with two parallel auctions: ``bench-all``
  (the five campaigns) and ``bench-auction`` (four of them and the hanging upstream, with
  a ``timeout_ms`` four times the budget).

Phases, with distinct callers throughout (so the shield never answers):

1. **CPU**: ``--rounds`` alternations of plain forwards (one campaign's own key) and
   ``bench-all`` auctions, each driven by ``--concurrency`` closed-loop clients; the
   gateway's CPU per request of each (from /proc) and their ratio, the median round's;
2. **hanging**: ``bench-auction`` auctions sent at a steady ``--rate`` (open loop), each
   wall time counted from its scheduled send, against ``budget_ms`` + 20 ms; its CPU per
   auction, with the idle gateway's CPU (measured just before) taken out;
3. **confirm**: every winner confirmed through the gateway with its auction's key, and
   the sandbox's count of loser confirmations (must be 0).

CPU numbers are only meaningful on a quiet machine.

    uv run python loadtests/auction_bench.py [--auctions N] [--plain N] [--hanging N]
        [--rate R] [--concurrency C] [--budget-ms B] [--rounds K] [--breaker off|default]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGNS = ("bench-camp-1", "bench-camp-2", "bench-camp-3", "bench-camp-4", "bench-camp-5")
AUCTION_KEY = "bench-auction"  # four campaigns and the hanging destination
ALL_ANSWER_KEY = "bench-all"  # five campaigns, all answering at once


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    proc = subprocess.Popen(
        args,
        env={**clean, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=ROOT,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


async def wait_http(url: str, within_s: float = 30.0) -> None:
    end = time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=0.5) as client:
        while time.monotonic() < end:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def auctions_file(sandbox: str, hang: str, budget_ms: int) -> str:
    """Two parallel auctions: ``bench-auction`` (four campaigns and the hanging upstream)
    and ``bench-all`` (five campaigns that all answer at once)."""
    lines: list[str] = []

    def destination(name: str, key: str, upstream: str, timeout_ms: int) -> None:
        lines.extend([
            "[[auctions.destinations]]",
            f'name = "{name}"',
            f'key = "{key}"',
            f'upstream = "{upstream}"',
            f"timeout_ms = {timeout_ms}",
        ])  # fmt: skip

    for name, key in (("bench", AUCTION_KEY), ("bench-all", ALL_ANSWER_KEY)):
        lines += ["[[auctions]]", f'name = "{name}"', f'key = "{key}"', 'mode = "parallel"',
                  f"budget_ms = {budget_ms}"]  # fmt: skip
        for n, campaign in enumerate(CAMPAIGNS[:4] if name == "bench" else CAMPAIGNS):
            destination(f"camp{n + 1}", campaign, sandbox, budget_ms)
        if name == "bench":
            destination("hanging", "bench-hang", hang, budget_ms * 4)
    return "\n".join(lines) + "\n"


async def hanging_upstream() -> tuple[asyncio.Server, str]:
    """Accepts connections, reads what comes, never answers."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def caller(n: int) -> str:
    """A distinct valid toll-free number per ``n`` (exchange 200-899)."""
    return f"+1855{2_000_000 + n % 7_000_000:07d}"


def limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)


async def drive(
    gw: str, key: str, total: int, concurrency: int, first: int
) -> tuple[list[float], dict[int, int], list[str]]:
    """``total`` pings from ``concurrency`` loops: wall times (s), statuses, won uuids."""
    walls: list[float] = []
    statuses: dict[int, int] = {}
    won: list[str] = []
    counter = iter(range(total))
    async with httpx.AsyncClient(timeout=10, limits=limits(concurrency)) as client:

        async def loop() -> None:
            for n in counter:
                body = {"key": key, "publisher_id": "bench", "caller_number": caller(first + n)}
                started = time.perf_counter()
                resp = await client.post(f"{gw}/rtbs.json", json=body)
                walls.append(time.perf_counter() - started)
                statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
                if resp.headers.get("x-outcome") == "reserved":
                    won.append(resp.json()["uuid"])

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return walls, statuses, won


async def drive_rate(
    gw: str, key: str, total: int, rate: float, first: int
) -> tuple[list[float], dict[int, int], list[str]]:
    """``total`` pings sent at a steady ``rate`` (open loop): each wall time is counted
    from its scheduled send time, so a client that fell behind is not hidden."""
    walls: list[float] = []
    statuses: dict[int, int] = {}
    won: list[str] = []
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=10, limits=limits(512)) as client:

        async def one(n: int, due: float) -> None:
            body = {"key": key, "publisher_id": "bench", "caller_number": caller(first + n)}
            resp = await client.post(f"{gw}/rtbs.json", json=body)
            walls.append(loop.time() - due)
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
            if resp.headers.get("x-outcome") == "reserved":
                won.append(resp.json()["uuid"])

        start = loop.time()
        tasks = []
        for n in range(total):
            due = start + n / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, due)))
        await asyncio.gather(*tasks)
    return walls, statuses, won


async def confirm_all(gw: str, key: str, uuids: list[str], concurrency: int) -> int:
    """Confirm each winner through the gateway with the auction key; how many were."""
    confirmed = 0
    pending = iter(uuids)
    async with httpx.AsyncClient(timeout=10, limits=limits(concurrency)) as client:

        async def loop() -> None:
            nonlocal confirmed
            for uuid in pending:
                body = {"key": key, "status": "confirmed"}
                done = await client.put(f"{gw}/rtbs/{uuid}.json", json=body)
                confirmed += done.status_code == 200

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return confirmed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--auctions", type=int, default=8_000, help="5-leg auctions, CPU phase")
    parser.add_argument("--plain", type=int, default=8_000)
    parser.add_argument("--hanging", type=int, default=2_000, help="auctions, hanging phase")
    parser.add_argument("--rate", type=float, default=50.0, help="auctions/s, hanging phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--budget-ms", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5, help="plain/auction alternations")
    parser.add_argument(
        "--breaker",
        choices=("off", "default"),
        default="off",
        help="off (the worst case): every auction pings the hanging destination; "
        "default: its breaker opens after GATEWAY_BREAKER_FAILURES timeouts, as deployed",
    )
    parser.add_argument(
        "--idle-s", type=float, default=5.0, help="seconds the idle gateway's CPU is measured"
    )
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the gateway (repeatable), to measure a lever both ways",
    )
    args = parser.parse_args()

    hang_server, hang_url = await hanging_upstream()
    sandbox_port, gateway_port = free_port(), free_port()
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    gw = f"http://127.0.0.1:{gateway_port}"
    with tempfile.TemporaryDirectory(prefix="auction-bench-") as tmp:
        path = Path(tmp) / "auctions.toml"
        path.write_text(auctions_file(sandbox, hang_url, args.budget_ms))
        py = [sys.executable, "-m", "gateway"]
        env = {
            "GATEWAY_LOG_FORMAT": "json",
            "GATEWAY_LOG_LEVEL": "warning",
            "GATEWAY_RTB_UPSTREAM_URL": sandbox,
            "GATEWAY_AUCTIONS_FILE": str(path),
            "GATEWAY_DRAIN_DELAY_S": "0",
            "GATEWAY_AUCTION_LATE_LEGS_MAX": "100000",
        }
        env.update(kv.split("=", 1) for kv in args.gateway_env)
        if args.breaker == "off":
            # Keep pinging the hanging destination: with its breaker open it would be
            # skipped after 20 timeouts and the auctions would no longer wait for it.
            env["GATEWAY_BREAKER_FAILURES"] = "0"
        sandbox_cmd = [*py, "sandbox", "--port", str(sandbox_port)]
        gateway_cmd = [*py, "serve", "--host", "127.0.0.1", "--port", str(gateway_port)]
        with process(sandbox_cmd, {}), process(gateway_cmd, env) as gateway:
            await wait_http(f"{sandbox}/healthz")
            await wait_http(f"{gw}/readyz")
            # Warm every path (connections, caches) before measuring.
            await drive(gw, CAMPAIGNS[0], 50, 4, 0)
            await drive(gw, ALL_ANSWER_KEY, 50, 4, 100)
            await drive(gw, AUCTION_KEY, 50, 4, 200)

            # 1. CPU: rounds alternate plain forwards and 5-leg auctions whose legs all
            # answer, so a shared machine's slow minutes fall on both sides; the ratio
            # printed is the median round's.
            plain: list[float] = []
            walls: list[float] = []
            won: list[str] = []
            plain_status: dict[int, int] = {}
            auction_status: dict[int, int] = {}
            ratios: list[tuple[float, float, float]] = []  # (ratio, plain, auction) CPU
            plain_s = auction_s = 0.0
            confirmed = 0
            for r in range(args.rounds):
                cpu0, t0 = cpu_seconds(gateway.pid), time.perf_counter()
                done, statuses, _ = await drive(
                    gw, CAMPAIGNS[0], args.plain // args.rounds, args.concurrency,
                    1_000 + r * args.plain,
                )  # fmt: skip
                cpu1, t1 = cpu_seconds(gateway.pid), time.perf_counter()
                round_walls, round_status, round_won = await drive(
                    gw, ALL_ANSWER_KEY, args.auctions // args.rounds, args.concurrency,
                    3_500_000 + r * args.auctions,
                )  # fmt: skip
                cpu2, t2 = cpu_seconds(gateway.pid), time.perf_counter()
                # Confirmed each round, while the reservations are live (outside the CPU).
                confirmed += await confirm_all(gw, ALL_ANSWER_KEY, round_won, args.concurrency)
                plain += done
                walls += round_walls
                won += round_won
                plain_s += t1 - t0
                auction_s += t2 - t1
                for into, add in ((plain_status, statuses), (auction_status, round_status)):
                    for code, n in add.items():
                        into[code] = into.get(code, 0) + n
                per_plain = (cpu1 - cpu0) / max(1, len(done))
                per_auction = (cpu2 - cpu1) / max(1, len(round_walls))
                ratios.append((per_auction / per_plain, per_plain, per_auction))

            # 2. One destination hanging, at a steady rate: wall time against the budget.
            # Every such auction waits out the budget, so it runs ~100x fewer per second
            # than the CPU phase: what the gateway spends idle (timers: the server's tick,
            # the ledger writer's wake) is measured first and taken out of its CPU figure.
            idle0, tidle = cpu_seconds(gateway.pid), time.perf_counter()
            await asyncio.sleep(args.idle_s)
            idle_per_s = (cpu_seconds(gateway.pid) - idle0) / (time.perf_counter() - tidle)
            cpu3, t3 = cpu_seconds(gateway.pid), time.perf_counter()
            hang_walls, hang_status, hang_won = await drive_rate(
                gw, AUCTION_KEY, args.hanging, args.rate, 6_000_000
            )
            cpu4, t4 = cpu_seconds(gateway.pid), time.perf_counter()
            hang_cpu = (cpu4 - cpu3 - idle_per_s * (t4 - t3)) / max(1, len(hang_walls))
            confirmed += await confirm_all(gw, AUCTION_KEY, hang_won, args.concurrency)
            won += hang_won
            async with httpx.AsyncClient() as client:
                counts = (await client.get(f"{sandbox}/_sandbox/auctions")).json()
                metrics = (await client.get(f"{gw}/metrics")).text
    hang_server.close()

    ratios.sort()
    ratio, plain_cpu, auction_cpu = ratios[len(ratios) // 2]
    p50, p99 = percentile(hang_walls, 0.5) * 1000, percentile(hang_walls, 0.99) * 1000
    target_ms = args.budget_ms + 20
    print(f"plain forwards: {len(plain)} in {plain_s:.1f}s, statuses {plain_status}")
    print(f"  CPU per forward: {plain_cpu * 1e6:.0f} us (the median round's)")
    print(f"auctions of 5 legs, all answering: {len(walls)} in {auction_s:.1f}s, {auction_status}")
    print(
        f"  CPU per auction: {auction_cpu * 1e6:.0f} us ="
        f" {ratio:.2f}x one plain forward (target <= 2.5x), median of {len(ratios)} rounds:"
        f" {', '.join(f'{r:.2f}' for r, _, _ in ratios)}"
    )
    hanging = "pinged every time" if args.breaker == "off" else "breaker at its defaults"
    print(
        f"auctions of 5 legs, 1 hanging ({hanging}), {args.rate:g}/s steady:"
        f" {len(hang_walls)}, {hang_status}"
    )
    print(
        f"  wall from the scheduled send: p50 {p50:.1f} ms, p99 {p99:.1f} ms,"
        f" max {max(hang_walls) * 1000:.1f} ms; target p99 <= budget + 20 = {target_ms} ms:"
        f" {'ok' if p99 <= target_ms else 'OVER'}"
    )
    print(
        f"  CPU per auction: {hang_cpu * 1e6:.0f} us = {hang_cpu / plain_cpu:.2f}x one plain"
        f" forward (the gateway idle, {idle_per_s * 1e3:.1f} ms CPU per second, taken out)"
    )
    print(f"winners confirmed through the gateway: {confirmed} of {len(won)}")
    print(f"  sandbox: {counts} (loser_confirmations must be 0)")
    for line in metrics.splitlines():
        if line.startswith(("gateway_auction_loser", "gateway_auction_late_legs_refused")) or (
            line.startswith("gateway_auction_legs_total{") and 'auction="bench"' in line
        ):
            print(f"  {line}")


if __name__ == "__main__":
    asyncio.run(main())
