"""How fast is a shielded repeat, with and without the near-cache?

Why this exists: a repeat ping for a caller the shield already answered is the hot path
the shield is for, and a Redis round trip was measured as the biggest single cost
of it. The near-cache (``GATEWAY_SHIELD_NEAR_CACHE_SIZE``) answers repeats from process
memory instead; this script measures what that buys, two ways:

1. **The shield step alone** (``StoreShield.answer`` for a stored caller, in process, no
   HTTP): in-process store, Redis without near-cache, Redis with near-cache. Tens of
   thousands of sequential calls; p50/p99 in microseconds.
2. **End to end over HTTP**: a private redis-server, the sandbox upstream and one gateway
   process (``python -m gateway serve``) pinned to core 0, driven by ``wrk`` on core 1
   POSTing the same ping over and over (every answer after the first is a hit), with 1
   connection (latency) and N connections (throughput). The gateway's own
   ``/metrics`` is read before and after, to show how many Redis round trips the hits
   cost.

Everything listens on 127.0.0.1, runs in its own process group and is stopped on exit.
Needs ``redis-server``, ``wrk`` and ``taskset``. Usage::

    uv run python loadtests/shield_bench.py [--duration S] [--connections N] [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.ping.requests import Ping  # noqa: E402
from gateway.shield.memory_store import MemoryShieldStore  # noqa: E402
from gateway.shield.redis_store import RedisShieldStore  # noqa: E402
from gateway.shield.service import StoreShield  # noqa: E402
from gateway.wire.answer import UpstreamAnswer  # noqa: E402
from gateway.wire.redis import RedisSeam  # noqa: E402

KEY = "7fc40342-f0a0-4e8f-bf09-b3887eedcb4a"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextlib.contextmanager
def process(args: list[str], *, core: int | None = None, env: dict[str, str] | None = None):
    cmd = (["taskset", "-c", str(core)] if core is not None else []) + args
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def wait_http(url: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def no_disk(tmp: str) -> list[str]:
    return ["--save", "", "--appendonly", "no", "--dir", tmp]


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="shield-bench-") as tmp,
        process(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", *no_disk(tmp)],
            core=1,
        ),
    ):
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"


# -- 1. the shield step alone ------------------------------------------------------------


async def shield_step(mode: str, redis_url: str, calls: int) -> dict[str, float]:
    seam = None
    if mode == "memory":
        shield = StoreShield(MemoryShieldStore(1000))
    else:
        seam = RedisSeam(redis_url, timeout_s=0.05, max_connections=8)
        store = RedisShieldStore(seam)
        shield = StoreShield(store, near_cache_size=1000 if mode == "redis+near" else 0)
    await shield.start()
    try:
        if mode == "redis+near":
            end = time.monotonic() + 10
            while not store.events_live and time.monotonic() < end:  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # the near-cache is used only while events flow
        expires = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
        body = msgspec.json.encode({"uuid": "u", "status": "reserved", "expires_at": expires})

        async def forward() -> UpstreamAnswer:
            return UpstreamAnswer(200, body)

        ping = Ping(KEY, "bench", f"+1855848{hash(mode) % 10000:04d}")
        loop = asyncio.get_running_loop()
        await shield.answer(ping, loop.time() + 3, forward)  # the miss that stores it
        took: list[float] = []
        for _ in range(calls):
            started = time.perf_counter()
            _, result = await shield.answer(ping, loop.time() + 3, forward)
            took.append(time.perf_counter() - started)
            assert result == "hit", result
    finally:
        await shield.close()
        if seam is not None:
            await seam.close()
    return {"p50_us": percentile(took, 0.5) * 1e6, "p99_us": percentile(took, 0.99) * 1e6}


# -- 2. end to end over HTTP -------------------------------------------------------------

CALLERS = 2000

# Repeats cycle through CALLERS stored callers, so every hit is its own lookup (concurrent
# repeats of one caller would share one in-process lookup and flatter the numbers).
WRK_LUA = """
local i = 0
request = function()
  i = i + 1
  local caller = string.format("%%2B1855848%04d", i % CALLERS)
  return wrk.format("POST", "/rtbs.json?key=%s&publisher_id=bench&caller_number=" .. caller)
end
""".replace("%s", KEY, 1).replace("CALLERS", str(CALLERS))


def caller_query(i: int) -> str:
    return f"key={KEY}&publisher_id=bench&caller_number=%2B1855848{i:04d}"


async def store_callers(base: str) -> None:
    """The first ping of every caller: each is a miss that stores its answer (a ping that
    met a Redis timeout on a busy box is forwarded unshielded: ping it again)."""
    pending = list(range(CALLERS))
    sem = asyncio.Semaphore(4)
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(5):

            async def one(i: int) -> tuple[int, str]:
                async with sem:
                    reply = await client.post(f"{base}/rtbs.json?{caller_query(i)}")
                    return i, reply.headers["x-shield"]

            results = await asyncio.gather(*(one(i) for i in pending))
            pending = [i for i, shield in results if shield not in ("miss", "hit")]
            if not pending:
                return
            await asyncio.sleep(1.5)  # past the bypass period
    raise RuntimeError(f"{len(pending)} callers could not be stored")


def flush(redis_url: str) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"FLUSHALL\r\n")
        sock.recv(16)


def wrk(url: str, connections: int, duration: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "non2xx": float(errors.group(1)) if errors else 0.0,
    }


def redis_round_trips(metrics: str) -> float:
    match = re.search(
        r'gateway_redis_command_duration_seconds_count\{command="shield_acquire",outcome="ok"\} '
        r"([\d.e+]+)",
        metrics,
    )
    return float(match.group(1)) if match else 0.0


def http_bench(
    redis_url: str, near_cache: int, connections: int, duration: int, script: Path
) -> dict[str, dict[str, float]]:
    sandbox_port, gw_port = free_port(), free_port()
    env = {
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_RTB_UPSTREAM_URL": f"http://127.0.0.1:{sandbox_port}",
        "GATEWAY_SHIELD_NEAR_CACHE_SIZE": str(near_cache),
        "GATEWAY_LOG_LEVEL": "warning",
        "GATEWAY_DRAIN_DELAY_S": "0",
    }
    gateway = [sys.executable, "-m", "gateway"]
    with (
        process([*gateway, "sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)], core=1),
        process(
            [*gateway, "serve", "--host", "127.0.0.1", "--port", str(gw_port)], core=0, env=env
        ),
    ):
        base = f"http://127.0.0.1:{gw_port}"
        wait_http(f"http://127.0.0.1:{sandbox_port}/healthz")
        wait_http(f"{base}/readyz")
        flush(redis_url)
        asyncio.run(store_callers(base))
        time.sleep(1.0)  # the subscription is up (near-cache is used only then)
        results = {}
        for conns in (1, connections):
            before = redis_round_trips(httpx.get(f"{base}/metrics").text)
            result = wrk(base, conns, duration, script)
            after = redis_round_trips(httpx.get(f"{base}/metrics").text)
            total = result["rps"] * duration
            result["redis_per_hit"] = (after - before) / total if total else 0.0
            results[f"c={conns}"] = result
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    with redis_server() as redis_url, tempfile.TemporaryDirectory() as tmp:
        print("## The shield step alone (StoreShield.answer for a stored caller)\n")
        print("| store | p50 | p99 |\n| --- | --- | --- |")
        for mode in ("memory", "redis", "redis+near"):
            r = asyncio.run(shield_step(mode, redis_url, args.calls))
            print(f"| {mode} | {r['p50_us']:.1f} µs | {r['p99_us']:.1f} µs |")
        script = Path(tmp) / "repeat.lua"
        script.write_text(WRK_LUA)
        print("\n## End to end: POST /rtbs.json repeats (hits), gateway on core 0, wrk on 1\n")
        print("| near-cache | conns | req/s | p50 | p99 | Redis round trips per hit |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, size in (("off", 0), ("on", 100_000)):
            for conns, r in http_bench(
                redis_url, size, args.connections, args.duration, script
            ).items():
                print(
                    f"| {label} | {conns} | {r['rps']:.0f} | {r['p50_ms']:.2f} ms "
                    f"| {r['p99_ms']:.2f} ms | {r['redis_per_hit']:.2f} |"
                    + (f" ({r['non2xx']:.0f} non-2xx!)" if r["non2xx"] else "")
                )


if __name__ == "__main__":
    main()
