"""Pick the HTTP client that forwards pings to the RTB upstream, by measurement.

Why this exists: the forward path (POST /rtbs.json -> upstream) is the gateway's slowest
hot path, and the choice of client dominates it. httpx's default transport (httpcore)
rescans its whole pool on every request (encode/httpcore #1035) and, with httpx 0.28,
pays an extra failed ``import sniffio`` per lock when ``sniffio`` is not installed. The
alternatives are httpx's API over the ``httpx-aiohttp`` transport, or aiohttp's client
directly. The choice is to be decided by a benchmark whose numbers are
written down; this script is that benchmark, so anyone can rerun it on their box.

What it does, in one run and with one harness for every variant:

* starts a private nginx (own prefix and config in a temp dir, 127.0.0.1, a free port,
  keepalive on) that answers ``POST /rtbs.json`` with a static reservation JSON;
* for each variant, starts a minimal Starlette app under uvicorn (uvloop, httptools,
  one worker, access log off) pinned to the *server* core; the app builds one pooled
  client in its lifespan and forwards each POST body to nginx, returning nginx's body;
* drives it with wrk (one thread, N connections, a Lua script that POSTs a
  form-encoded ping) pinned to the *load* core, 2 s warm-up then D s measured;
* prints a Markdown table: req/s, p50, p99, errors and the ratio to the best forwarder,
  plus a baseline of the same app returning the static body without forwarding.

Pinning: uvicorn on core 0; wrk *and* nginx share core 1. nginx's share is small next to
a Python forwarder (it answers a few thousand req/s of ~300-byte bodies), but it is not
zero, so compare variants with each other rather than with absolute numbers from
another box.

Everything started here runs in its own process group and is stopped on exit, on
errors and on Ctrl-C/SIGTERM; everything listens on 127.0.0.1 only; every wait is
bounded.

Usage::

    uv run python loadtests/client_bench.py [--duration S] [--connections N]

Needs ``nginx``, ``wrk`` and ``taskset`` on PATH (Debian: ``apt-get install -y nginx
wrk``). The ``httpx+sniffio`` variant is added when ``sniffio`` is not importable in
the project environment and ``uv`` is on PATH: it reruns the httpx server through
``uv run --no-sync --with sniffio`` so the cost of the missing package is measured, not
guessed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

# The reservation the fake upstream returns; shaped like the real RTB answer so the
# body size (and so the copy/parse cost) is realistic.
RESERVATION: dict[str, Any] = {
    "uuid": "3f0c6a52-8a1e-4c1b-9a47-2f5e8c1d7b90",
    "status": "reserved",
    "retreaver_payout": 5.0,
    "retreaver_seconds": 10,
    "inbound_number": "+18772435010",
    "expires_at": "2026-11-27T12:00:10Z",
}
RESERVATION_BODY = json.dumps(RESERVATION, separators=(",", ":")).encode()

# A form-encoded ping, as publishers send it.
PING_BODY = "key=bench-key&publisher_id=pub&caller_number=%2B18558485518"
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}

PATH = "/rtbs.json"
INFO_PATH = "/_bench/info"
UPSTREAM_TIMEOUT_S = 5.0

BASELINE = "baseline"
HTTPX = "httpx"
HTTPX_SNIFFIO = "httpx+sniffio"
HTTPX_AIOHTTP = "httpx-aiohttp"
AIOHTTP = "aiohttp"
LEAN = "http1"  # gateway/wire/http1.py, the gateway's own RTB client
ALL_VARIANTS = (BASELINE, HTTPX, HTTPX_SNIFFIO, HTTPX_AIOHTTP, AIOHTTP, LEAN)
FORWARDERS = frozenset({HTTPX, HTTPX_SNIFFIO, HTTPX_AIOHTTP, AIOHTTP, LEAN})

DESCRIPTIONS = {
    BASELINE: "uvicorn+Starlette, static body, no forward",
    HTTPX: "httpx.AsyncClient, default (httpcore) transport",
    HTTPX_SNIFFIO: "same, with sniffio installed (uv --with)",
    HTTPX_AIOHTTP: "httpx.AsyncClient over httpx_aiohttp.AiohttpTransport",
    AIOHTTP: "aiohttp.ClientSession directly",
    LEAN: "gateway.wire.http1 (pooled keep-alive, pre-built head, httptools parser)",
}

# wrk's Lua: POST the ping and print one machine-readable summary line at the end,
# so we do not parse wrk's human output. Latencies are in microseconds.
WRK_LUA = f"""
wrk.method = "POST"
wrk.body = "{PING_BODY}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests":%.0f,"duration_us":%.0f,"p50_us":%.0f,"p90_us":%.0f,' ..
    '"p99_us":%.0f,"max_us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,' ..
    '"status":%.0f,"timeout":%.0f}}\\n',
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} reuseport;
        location = {path} {{
            default_type application/json;
            return 200 '{body}';
        }}
        location / {{ return 404; }}
    }}
}}
"""


# --------------------------------------------------------------------------------------
# The server side: one tiny Starlette app per variant, run in a child process.
# --------------------------------------------------------------------------------------


def build_app(variant: str, upstream_url: str, pool_size: int) -> Any:
    """Return the Starlette app for ``variant``.

    Every variant has the same shape (lifespan-built client in ``request.state``, body
    read, one route) so that the only difference measured is the client. Pool limits
    are equal across clients and at least the number of load connections, so no
    variant churns connections because of a smaller default keep-alive pool (httpx's
    default keeps only 20).
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    has_sniffio = importlib.util.find_spec("sniffio") is not None

    async def info(request: Request) -> Response:
        """Let the runner check which variant is really serving, and with what."""
        return JSONResponse({"variant": variant, "sniffio": has_sniffio, "pid": os.getpid()})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        """Build the one pooled client for this process, as the gateway will."""
        if variant == BASELINE:
            yield {}
        elif variant in (HTTPX, HTTPX_SNIFFIO):
            import httpx

            limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
            async with httpx.AsyncClient(limits=limits, timeout=UPSTREAM_TIMEOUT_S) as client:
                yield {"client": client}
        elif variant == HTTPX_AIOHTTP:
            import httpx
            from httpx_aiohttp import AiohttpTransport

            session = _aiohttp_session(pool_size)
            transport = AiohttpTransport(client=session)
            # Closing the client closes the transport, which closes the session.
            async with httpx.AsyncClient(transport=transport, timeout=UPSTREAM_TIMEOUT_S) as client:
                yield {"client": client}
        elif variant == AIOHTTP:
            async with _aiohttp_session(pool_size) as session:
                yield {"client": session}
        elif variant == LEAN:
            from gateway.wire.http1 import Origin, Pool

            origin, _, path = upstream_url.partition("://")[2].partition("/")
            pool = Pool(Origin("http://" + origin, "client-bench"), max_connections=pool_size)
            head = pool.origin.head(
                "POST",
                "/" + path,
                b"".join(f"{k}: {v}\r\n".encode() for k, v in FORM_HEADERS.items()),
            )
            try:
                yield {"client": (pool, head)}
            finally:
                await pool.close()
        else:
            raise ValueError(f"unknown variant {variant!r}")

    async def static(request: Request) -> Response:
        """Baseline: pay for the server, framework and body read, but not the forward."""
        await request.body()
        return Response(RESERVATION_BODY, media_type="application/json")

    async def via_httpx(request: Request) -> Response:
        """Forward with httpx (either transport); return the upstream's body as is."""
        body = await request.body()
        upstream = await request.state.client.post(upstream_url, content=body, headers=FORM_HEADERS)
        return Response(
            upstream.content, status_code=upstream.status_code, media_type="application/json"
        )

    async def via_aiohttp(request: Request) -> Response:
        """Forward with aiohttp; return the upstream's body as is."""
        body = await request.body()
        async with request.state.client.post(
            upstream_url, data=body, headers=FORM_HEADERS
        ) as upstream:
            payload = await upstream.read()
            return Response(payload, status_code=upstream.status, media_type="application/json")

    async def via_http1(request: Request) -> Response:
        """Forward with the gateway's lean HTTP/1.1 client; return the upstream's body."""
        from gateway.wire.http1 import content_length

        body = await request.body()
        pool, head = request.state.client
        async with asyncio.timeout(UPSTREAM_TIMEOUT_S):
            upstream = await pool.send(head + content_length(body) + body, 1 << 20)
        return Response(upstream.body, status_code=upstream.status, media_type="application/json")

    endpoint = {
        BASELINE: static,
        LEAN: via_http1,
        HTTPX: via_httpx,
        HTTPX_SNIFFIO: via_httpx,
        HTTPX_AIOHTTP: via_httpx,
        AIOHTTP: via_aiohttp,
    }[variant]
    routes = [
        Route(PATH, endpoint, methods=["POST"]),
        Route(INFO_PATH, info, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _aiohttp_session(pool_size: int) -> Any:
    """One aiohttp session with the same pool size and timeout as the httpx variants."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=pool_size, limit_per_host=0, keepalive_timeout=30)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT_S)
    )


def serve(variant: str, port: int, upstream_url: str, pool_size: int) -> None:
    """Child-process entry point: serve one variant the way the gateway will be served."""
    import uvicorn

    app = build_app(variant, upstream_url, pool_size)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


# --------------------------------------------------------------------------------------
# The runner side: start nginx, each server, wrk; collect and print.
# --------------------------------------------------------------------------------------


class BenchError(RuntimeError):
    """A variant or the harness could not be measured; the message says why."""


@dataclass(frozen=True)
class Result:
    """One variant's measurement (latencies in milliseconds)."""

    variant: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    sniffio: bool | None
    failure: str | None = None


class Processes:
    """Children started in their own process groups, so they can all be stopped.

    Each child gets ``start_new_session=True``: Ctrl-C in the terminal then reaches only
    this runner, which stops the children itself (SIGTERM to the group, SIGKILL after a
    grace period) instead of leaving half of them running.
    """

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, argv: Sequence[str], log: Path, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` with stdout and stderr going to ``log``."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
            )
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
        """Stop one child and everything in its process group."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=grace_s)
            # Members can outlive the leader (uv's python child, nginx's worker).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        """Stop every child still known, newest first."""
        for proc in reversed(list(self._procs)):
            self.stop(proc)


def _raise_keyboard_interrupt(signum: int, frame: object) -> NoReturn:
    """Turn SIGTERM into the same clean shutdown path as Ctrl-C."""
    raise KeyboardInterrupt


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(
    port: int, method: str, path: str, body: str | None = None, timeout: float = 2.0
) -> tuple[int, bytes]:
    """One blocking HTTP request to 127.0.0.1 (used for readiness and sanity checks)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = FORM_HEADERS if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until_ready(
    proc: subprocess.Popen[bytes], port: int, log: Path, deadline_s: float
) -> None:
    """Poll until the child answers a ping with the reservation, or fail with its log."""
    deadline = time.monotonic() + deadline_s
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"exited with {proc.returncode}: {_tail(log)}")
        try:
            status, body = request(port, "POST", PATH, PING_BODY)
        except OSError as exc:
            last_error = repr(exc)
        else:
            if status == 200 and json.loads(body) == RESERVATION:
                return
            last_error = f"HTTP {status}: {body[:200]!r}"
        time.sleep(0.1)
    raise BenchError(f"not ready after {deadline_s:.0f}s ({last_error}): {_tail(log)}")


def _tail(log: Path, lines: int = 15) -> str:
    """The end of a child's log, for error messages."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def pinned(cpu: int | None, argv: Sequence[str]) -> list[str]:
    """Prefix ``argv`` with ``taskset -c cpu`` when pinning is on."""
    return list(argv) if cpu is None else ["taskset", "-c", str(cpu), *argv]


def run_wrk(
    procs: Processes,
    load_cpu: int | None,
    port: int,
    lua: Path,
    connections: int,
    seconds: float,
    log: Path,
) -> dict[str, float]:
    """Run wrk once (one thread, ``connections`` connections) and return its summary."""
    argv = pinned(
        load_cpu,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(lua),
            f"http://127.0.0.1:{port}{PATH}",
        ],
    )
    out = log.with_suffix(".wrk.log")
    out.write_bytes(b"")
    proc = procs.start(argv, out)
    try:
        proc.wait(timeout=seconds + 30)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish in {seconds + 30:.0f}s") from exc
    finally:
        procs.stop(proc)
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith("BENCH "):
            return {k: float(v) for k, v in json.loads(line[len("BENCH ") :]).items()}
    raise BenchError(f"wrk printed no summary: {_tail(out)}")


def measure(
    procs: Processes,
    variant: str,
    args: argparse.Namespace,
    workdir: Path,
    upstream_url: str,
    lua: Path,
) -> Result:
    """Start one variant's server, warm it up, measure it, stop it."""
    port = free_port()
    log = workdir / f"{variant.replace('+', '_')}.log"
    serve_argv = [
        str(Path(__file__).resolve()),
        "--serve",
        variant,
        "--port",
        str(port),
        "--upstream",
        upstream_url,
        "--pool",
        str(args.pool),
    ]
    if variant == HTTPX_SNIFFIO:
        # Same project environment, plus sniffio in an overlay: nothing else changes.
        argv = ["uv", "run", "--no-sync", "--with", "sniffio", "python", *serve_argv]
        ready_s = 60.0
    else:
        argv = [sys.executable, *serve_argv]
        ready_s = 20.0
    proc = procs.start(pinned(args.server_cpu, argv), log, cwd=Path(__file__).resolve().parents[1])
    try:
        wait_until_ready(proc, port, log, ready_s)
        _, raw_info = request(port, "GET", INFO_PATH)
        sniffio = bool(json.loads(raw_info)["sniffio"])
        if args.warmup > 0:
            run_wrk(procs, args.load_cpu, port, lua, args.connections, args.warmup, log)
        stats = run_wrk(procs, args.load_cpu, port, lua, args.connections, args.duration, log)
        if proc.poll() is not None:
            raise BenchError(f"server died during the run: {_tail(log)}")
    finally:
        procs.stop(proc)
    errors = int(sum(stats[k] for k in ("connect", "read", "write", "status", "timeout")))
    return Result(
        variant=variant,
        rps=stats["requests"] / (stats["duration_us"] / 1e6),
        p50_ms=stats["p50_us"] / 1000,
        p99_ms=stats["p99_us"] / 1000,
        errors=errors,
        sniffio=sniffio,
    )


def start_nginx(procs: Processes, cpu: int | None, workdir: Path) -> int:
    """Start the private upstream nginx; return its port once it answers correctly."""
    prefix = workdir / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    port = free_port()
    body = RESERVATION_BODY.decode()
    if "'" in body:
        raise BenchError("reservation body must not contain a single quote")
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, path=PATH, body=body))
    log = workdir / "nginx.stdout.log"
    argv = ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    proc = procs.start(pinned(cpu, argv), log)
    try:
        wait_until_ready(proc, port, prefix / "error.log", 10.0)
    except BenchError as exc:
        raise BenchError(f"nginx: {exc}") from exc
    return port


def tool_version(argv: Sequence[str]) -> str:
    """First line a tool prints about its version (nginx and wrk print to stderr)."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


def package_version(name: str) -> str:
    """Installed version of a Python distribution, or ``absent``."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def print_header(args: argparse.Namespace, variants: Sequence[str]) -> None:
    """Say what is being measured and with which versions, so the table can be trusted."""
    pkgs = ("httpx", "httpcore", "httpx-aiohttp", "aiohttp", "starlette", "uvicorn")
    versions = ", ".join(f"{p} {package_version(p)}" for p in pkgs)
    print(f"# forwarding client benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"python {sys.version.split()[0]}; {versions}")
    print(
        f"sniffio in project env: {package_version('sniffio')}; "
        f"{tool_version(['nginx', '-v'])}; {tool_version(['wrk', '-v'])}"
    )
    if args.server_cpu is None:
        print("pinning: off (fewer than 2 CPUs or --no-pin); numbers are noisier")
    else:
        print(
            f"pinning: uvicorn on core {args.server_cpu}; wrk and nginx on core {args.load_cpu}"
            f" ({os.cpu_count()} cores)"
        )
    print(
        f"load: wrk -t1 -c{args.connections}, {args.warmup:g}s warm-up + {args.duration:g}s "
        f"measured per variant; pool {args.pool}; variants: {', '.join(variants)}"
    )
    print()


def print_table(results: Sequence[Result]) -> None:
    """Markdown table: ready to paste into loadtests/README.md."""
    forwarded = [r for r in results if r.variant in FORWARDERS and r.failure is None]
    best = max((r.rps for r in forwarded), default=0.0)
    print("| variant | req/s | p50 ms | p99 ms | errors | × best forwarder |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        name = r.variant
        if r.variant in (HTTPX, HTTPX_SNIFFIO) and r.sniffio is not None:
            name += " (sniffio present)" if r.sniffio else " (no sniffio)"
        if r.variant == BASELINE:
            name += " (no forward)"
        if r.failure is not None:
            print(f"| {name} | failed | | | | |")
            continue
        ratio = f"{r.rps / best:.2f}" if best else "-"
        print(f"| {name} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {ratio} |")
    for r in results:
        if r.failure is not None:
            print(f"\n{r.variant} failed: {r.failure}", file=sys.stderr)
    print()
    for r in results:
        print(f"- {r.variant}: {DESCRIPTIONS[r.variant]}")


def choose_variants(requested: str | None) -> list[str]:
    """The variants to run: as asked, or all that make sense on this machine."""
    if requested:
        chosen = [v.strip() for v in requested.split(",") if v.strip()]
        unknown = sorted(set(chosen) - set(ALL_VARIANTS))
        if unknown:
            raise SystemExit(f"unknown variant(s): {', '.join(unknown)}; known: {ALL_VARIANTS}")
        return chosen
    variants = list(ALL_VARIANTS)
    if importlib.util.find_spec("sniffio") is not None or shutil.which("uv") is None:
        # Either plain httpx already has sniffio, or we cannot add it: nothing to compare.
        variants.remove(HTTPX_SNIFFIO)
    return variants


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line: the runner's knobs, plus the hidden child mode ``--serve``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per variant")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per variant")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--variants", help=f"comma-separated subset of {','.join(ALL_VARIANTS)}")
    parser.add_argument(
        "--pool", type=int, default=0, help="client pool size (default: max(100, connections))"
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="core for uvicorn")
    parser.add_argument("--load-cpu", type=int, default=1, help="core for wrk and nginx")
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp dir and say where")
    parser.add_argument("--serve", choices=ALL_VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pool <= 0:
        args.pool = max(100, args.connections)
    if not 1 <= args.connections <= 10_000:
        parser.error("--connections must be in 1..10000")
    if not 1 <= args.duration <= 600 or not 0 <= args.warmup <= 60:
        parser.error("--duration must be in 1..600 and --warmup in 0..60")
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if args.no_pin or len(cpus) < 2 or shutil.which("taskset") is None:
        args.server_cpu = args.load_cpu = None
    elif args.server_cpu not in cpus or args.load_cpu not in cpus:
        parser.error(f"--server-cpu/--load-cpu must be among {sorted(cpus)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every variant under the same harness and print the table."""
    args = parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.upstream, args.pool)
        return 0

    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if missing:
        print(
            f"missing: {', '.join(missing)} (Debian: apt-get install -y nginx wrk)",
            file=sys.stderr,
        )
        return 2
    variants = choose_variants(args.variants)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    print_header(args, variants)
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="client-bench-"))
    results: list[Result] = []
    try:
        lua = workdir / "ping.lua"
        lua.write_text(WRK_LUA)
        nginx_port = start_nginx(procs, args.load_cpu, workdir)
        upstream_url = f"http://127.0.0.1:{nginx_port}{PATH}"
        for variant in variants:
            print(f"... {variant}", file=sys.stderr, flush=True)
            try:
                results.append(measure(procs, variant, args, workdir, upstream_url, lua))
            except BenchError as exc:
                results.append(Result(variant, 0.0, 0.0, 0.0, 0, None, failure=str(exc)))
        print_table(results)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        if args.keep_logs:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(r.failure is None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
