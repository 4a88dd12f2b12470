"""What does an auction cost, and does it keep its budget when a destination hangs?

Why this exists: a parallel auction sends one ping per destination and must answer the
publisher within ``budget_ms`` + 20 ms even when one destination never answers; it
should cost at most ~2.5x the CPU of one plain forward; and under load it must never
confirm a reservation that lost. This script measures all three, on real processes:

- the sandbox (``python -m gateway sandbox``) plays four campaigns that bid at once;
- a "hanging" upstream in this process accepts connections and never answers;
- one gateway (``python -m gateway serve``) with a parallel auction of those five
  destinations (``budget_ms``, the hanging one with a longer ``timeout_ms``).

Phases, each driven by ``--concurrency`` closed-loop clients with distinct callers (so
the shield never answers):

1. **plain**: pings with one campaign's own key, each forwarded once;
2. **auction**: pings with the auction key;
3. **confirm**: every winner confirmed through the gateway with the auction key.

It prints the auctions' wall-time p50/p99 against ``budget_ms`` + 20 ms, the gateway's
CPU time per request in each phase (from /proc) and their ratio, and the sandbox's count
of loser confirmations (must be 0). CPU numbers are only meaningful on a quiet machine.

    uv run python loadtests/auction_bench.py [--auctions N] [--plain N] [--concurrency C]
        [--budget-ms B]
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
CAMPAIGNS = ("bench-camp-1", "bench-camp-2", "bench-camp-3", "bench-camp-4")
AUCTION_KEY = "bench-auction"


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
    lines = [
        "[[auctions]]",
        'name = "bench"',
        f'key = "{AUCTION_KEY}"',
        'mode = "parallel"',
        f"budget_ms = {budget_ms}",
    ]
    for n, key in enumerate(CAMPAIGNS):
        lines += [
            "[[auctions.destinations]]",
            f'name = "camp{n + 1}"',
            f'key = "{key}"',
            f'upstream = "{sandbox}"',
            f"timeout_ms = {budget_ms}",
        ]
    lines += [
        "[[auctions.destinations]]",
        'name = "hanging"',
        'key = "bench-hang"',
        f'upstream = "{hang}"',
        f"timeout_ms = {budget_ms * 4}",
    ]
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


async def confirm_all(gw: str, uuids: list[str], concurrency: int) -> int:
    """Confirm each winner through the gateway with the auction key; how many were."""
    confirmed = 0
    pending = iter(uuids)
    async with httpx.AsyncClient(timeout=10, limits=limits(concurrency)) as client:

        async def loop() -> None:
            nonlocal confirmed
            for uuid in pending:
                body = {"key": AUCTION_KEY, "status": "confirmed"}
                done = await client.put(f"{gw}/rtbs/{uuid}.json", json=body)
                confirmed += done.status_code == 200

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return confirmed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--auctions", type=int, default=10_000)
    parser.add_argument("--plain", type=int, default=10_000)
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
        if args.breaker == "off":
            # Keep pinging the hanging destination: with its breaker open it would be
            # skipped after 20 timeouts and the auctions would no longer wait for it.
            env["GATEWAY_BREAKER_FAILURES"] = "0"
        sandbox_cmd = [*py, "sandbox", "--port", str(sandbox_port)]
        gateway_cmd = [*py, "serve", "--host", "127.0.0.1", "--port", str(gateway_port)]
        with process(sandbox_cmd, {}), process(gateway_cmd, env) as gateway:
            await wait_http(f"{sandbox}/healthz")
            await wait_http(f"{gw}/readyz")
            # Warm both paths (connections, caches) before measuring.
            await drive(gw, CAMPAIGNS[0], 50, 4, 0)
            await drive(gw, AUCTION_KEY, 50, 4, 100)

            # Rounds alternate plain forwards and auctions, so a shared machine's slow
            # minutes fall on both sides; the ratio printed is the median round's.
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
                    gw, AUCTION_KEY, args.auctions // args.rounds, args.concurrency,
                    3_500_000 + r * args.auctions,
                )  # fmt: skip
                cpu2, t2 = cpu_seconds(gateway.pid), time.perf_counter()
                # Confirmed each round, while the reservations are live (outside the CPU).
                confirmed += await confirm_all(gw, round_won, args.concurrency)
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
            async with httpx.AsyncClient() as client:
                counts = (await client.get(f"{sandbox}/_sandbox/auctions")).json()
                metrics = (await client.get(f"{gw}/metrics")).text
    hang_server.close()

    ratios.sort()
    ratio, plain_cpu, auction_cpu = ratios[len(ratios) // 2]
    p50, p99 = percentile(walls, 0.5) * 1000, percentile(walls, 0.99) * 1000
    target_ms = args.budget_ms + 20
    print(f"plain forwards: {len(plain)} in {plain_s:.1f}s, statuses {plain_status}")
    print(f"  CPU per forward: {plain_cpu * 1e6:.0f} us (the median round's)")
    hanging = "pinged every time" if args.breaker == "off" else "breaker at its defaults"
    print(
        f"auctions (5 legs, 1 hanging, {hanging}): {len(walls)} in {auction_s:.1f}s,"
        f" {auction_status}"
    )
    print(
        f"  wall p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(walls) * 1000:.1f} ms;"
        f" target p99 <= budget + 20 = {target_ms} ms: {'ok' if p99 <= target_ms else 'OVER'}"
    )
    print(
        f"  CPU per auction: {auction_cpu * 1e6:.0f} us ="
        f" {ratio:.2f}x one plain forward (target <= 2.5x), median of {len(ratios)} rounds:"
        f" {', '.join(f'{r:.2f}' for r, _, _ in ratios)}"
    )
    print(f"  winners confirmed through the gateway: {confirmed} of {len(won)}")
    print(f"  sandbox: {counts} (loser_confirmations must be 0)")
    for line in metrics.splitlines():
        if line.startswith(("gateway_auction_loser", "gateway_auction_late_legs_refused")):
            print(f"  {line}")


if __name__ == "__main__":
    asyncio.run(main())
