"""Real processes for the fault suite: gateway replicas and a sandbox, plus a steady load.

Unlike ``tests.support.servers.GatewayProcess`` (pipes read at the end), these write
their output to a file: under thousands of requests a pipe nobody reads would fill and
stall the server, and the stall would be measured as a fault of the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx

from tests.support.ports import free_port


class Proc:
    """A child process on a free loopback port whose output goes to a log file."""

    def __init__(self, argv: list[str], env: Mapping[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        full.update(env)
        self.log = Path(tempfile.mkstemp(prefix="rtbgw-fault-", suffix=".log")[1])
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway",
                    *argv,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait_ready(self, path: str = "/healthz", timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"exited {self.proc.returncode}: {self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.url + path)).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"not ready: {self.tail()}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    async def wait(self, timeout: float = 30.0) -> int:
        return await asyncio.to_thread(self.proc.wait, timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.log.unlink(missing_ok=True)

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


def gateway(env: Mapping[str, str]) -> Proc:
    base = {"GATEWAY_LOG_LEVEL": "warning", "GATEWAY_DRAIN_DELAY_S": "0"}
    return Proc(["serve"], {**base, **env})


def sandbox() -> Proc:
    return Proc(["sandbox"], {})


@contextlib.asynccontextmanager
async def running(*procs: Proc):  # type: ignore[no-untyped-def]
    try:
        await asyncio.gather(*(p.wait_ready() for p in procs))
        yield procs
    finally:
        for p in procs:
            p.stop()


async def metric(url: str, name: str, labels: str = "") -> float:
    """One sample from a ``/metrics`` page (``labels`` as written: ``upstream="rtb"``)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(url + "/metrics")).text
    wanted = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(wanted):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{wanted.strip()} not on /metrics")


@dataclass
class Result:
    sent_at: float
    latency_s: float
    status: int  # 0: no answer (connection error or client timeout)
    shield: str = ""


@dataclass
class Load:
    """Open-loop load: request ``i`` leaves at ``start + i / rate`` whatever came back."""

    results: list[Result] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def run(
        self,
        session: aiohttp.ClientSession,
        make_url: Callable[[int], str],
        rate: float,
        stop: asyncio.Event,
        timeout_s: float = 10.0,
        method: str = "POST",
    ) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        while not stop.is_set():
            due = start + i / rate
            if due > loop.time():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), due - loop.time())
                continue
            task = asyncio.create_task(self._one(session, method, make_url(i), timeout_s))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.gather(*tasks)

    async def _one(
        self, session: aiohttp.ClientSession, method: str, url: str, timeout_s: float
    ) -> None:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        try:
            async with asyncio.timeout(timeout_s):
                async with session.request(method, url) as resp:
                    await resp.read()
                    status, shield = resp.status, resp.headers.get("X-Shield", "")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.errors.append(type(exc).__name__)
            status, shield = 0, ""
        self.results.append(Result(sent, loop.time() - sent, status, shield))

    def between(self, t0: float, t1: float) -> list[Result]:
        return [r for r in self.results if t0 <= r.sent_at < t1]


def p99_ms(results: list[Result]) -> float:
    return percentile([r.latency_s for r in results], 0.99) * 1000


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def until(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Poll state that has no event to wait on (another process's), bounded."""
    end = time.monotonic() + within
    while not await check():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def session(limit: int = 512) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit), cookie_jar=aiohttp.DummyCookieJar()
    )
