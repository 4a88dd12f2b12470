"""``loadtests/bench``: the gateway side by side with nginx, on one 2-core machine.

Why these scenarios: the issue's targets are ratios to what a plain reverse proxy does on
the same box, so every number is measured in one run, one harness, same pinning:

* **nginx proxy_pass** (keepalive) to a fast static upstream: the baseline;
* **gateway, shield hit** (repeat callers: a wrk Lua script cycling 100 callers);
* **gateway, forward** (unique callers: a new number on every request); the in-process
  store keeps every one of them, so this path also pays for an insert;
* the same two with the Redis store (when the shield is wired), because that is the
  multi-replica configuration;
* **added latency at a fixed rate** (1,000 req/s by default, open loop, ``rateclient.py``):
  direct to the upstream vs through the gateway; the p99 difference is what a ping pays;
* **RSS flat**: the in-process store filled with 10k and then 1M distinct callers under
  a stated cap (``GATEWAY_SHIELD_MEMORY_MAX_ENTRIES``); resident memory must not move by
  more than 10%.

Request logs are on for both sides by default, as users run them: nginx writes its
``combined`` access log to a file in its prefix, the gateway runs at its default log level
(``info``) with its access log going to its log file. ``--logs off`` runs both without
(nginx ``access_log off``, the gateway at ``warning``); ``--logs both`` runs every
throughput scenario both ways and prints both ratios (the fixed-rate and RSS runs use logs
on).

The server under test (nginx proxy or gateway) is pinned to core 0; wrk, the rate
client, the upstream nginx and redis-server share core 1. Everything listens on
127.0.0.1 and is stopped at the end, on errors and on signals. Every run is bounded.
Where the throughput targets are missed, the gateway is profiled with py-spy and the
hot spots are printed in microseconds per request.

Outputs: a table on stdout and, under ``loadtests/out/bench-<time>/``, ``results.json``,
``results.md``, ``bench.png`` (also copied to ``docs/pages/img/bench.png``), logs and profiles.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chart
import harness
import hotspots
import nginx
import promtext
from harness import HOST, ROOT, Child, Processes, clean_env, free_port, http, wait_http

OUT = ROOT / "loadtests" / "out"
LUA = ROOT / "loadtests" / "bench.lua"

# Caller number ranges, kept apart so that no scenario finds another's callers in a
# shared Redis (bench.lua / rateclient.py number callers the same way).
HIT_CALLERS_AT = 50_000_000
FORWARD_AT = 0
WARMUP_AT = 100_000_000
RATE_FORWARD_AT = 20_000_000
RATE_HIT_AT = 60_000_000
RSS_AT = 30_000_000

REDIS_FORWARD = "via gateway, forward (redis)"

TARGETS = {
    "hit": 0.30,
    "forward": 0.10,
    "added_p99_ms": 2.0,
    "added_p99_redis_ms": 1.5,
    "rss_flat": 0.10,
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="loadtests/bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    p.add_argument("--connections", type=int, default=50, help="wrk connections")
    p.add_argument("--rate", type=float, default=1000.0, help="fixed rate, req/s")
    p.add_argument("--rounds", type=int, default=3, help="repeat each scenario (best/median)")
    p.add_argument("--rss-callers", type=int, default=1_000_000, help="callers, big fill")
    p.add_argument("--rss-small", type=int, default=10_000, help="callers, small fill")
    p.add_argument("--rss-cap", type=int, default=10_000, help="store cap for the RSS check")
    p.add_argument("--rss-max-s", type=float, default=900.0, help="time limit of the fill")
    p.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="py-spy the gateway paths (auto: only where a target is missed)",
    )
    p.add_argument("--no-redis", action="store_true", help="skip the Redis scenarios")
    p.add_argument("--skip-rss", action="store_true", help="skip the RSS check")
    p.add_argument(
        "--only",
        default="",
        help="comma-separated words: run only throughput scenarios whose name holds one "
        "(nginx is always run), e.g. 'forward (redis),hit (redis)'",
    )
    p.add_argument("--skip-rate", action="store_true", help="skip the fixed-rate runs")
    p.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for every gateway started (repeatable), to measure a lever both "
        "ways, e.g. GATEWAY_HIT_LANE=off",
    )
    p.add_argument(
        "--profile-store",
        choices=("memory", "redis"),
        default="memory",
        help="which shield store the profiled gateways use",
    )
    p.add_argument("--quick", action="store_true", help="5 s runs, 100k-caller RSS fill")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument(
        "--logs",
        choices=("on", "off", "both"),
        default="on",
        help="request logs of both servers (on: nginx access_log to a file, the gateway at "
        "its default level; both: each throughput scenario both ways)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rss_callers, args.rounds = 5.0, 1.0, 100_000, 1
    return args


# -- tools ----------------------------------------------------------------------------------


def ensure_tools() -> None:
    missing = [
        t for t in ("wrk", "nginx") if not (shutil.which(t) or Path(f"/usr/sbin/{t}").exists())
    ]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(f"missing {', '.join(missing)}: apt-get install -y wrk nginx")
    print(f"installing {' '.join(missing)} (apt-get)...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk", "nginx"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def py_spy() -> list[str] | None:
    if shutil.which("py-spy"):
        return ["py-spy"]
    if shutil.which("uv"):
        return ["uv", "tool", "run", "py-spy"]
    return None


# -- measuring --------------------------------------------------------------------------------


def family(pid: int) -> list[int]:
    """``pid`` and its children (nginx master + worker)."""
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids = (task / "children").read_text().split()
            pids.extend(int(k) for k in kids)
    except OSError:
        pass
    return pids


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += harness.cpu_seconds(pid)
    return total


def memory_of(pids: list[int]) -> dict[str, int]:
    out = {"VmRSS": 0, "VmHWM": 0}
    for pid in pids:
        try:
            mem = harness.memory_kb(pid)
        except OSError:
            continue
        for k in out:
            out[k] += mem.get(k, 0)
    return out


def machine_cpu() -> tuple[float, float]:
    """Busy and steal seconds of the whole machine so far (``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = harness.CLK_TCK
    return (user + nice + system + irq + softirq) / tick, steal / tick


@dataclass
class CpuSeen:
    busy: float
    steal: float
    ours: float
    foreign: float = 0.0

    def minus(self, before: CpuSeen) -> CpuSeen:
        busy = self.busy - before.busy
        ours = self.ours - before.ours
        return CpuSeen(busy, self.steal - before.steal, ours, max(0.0, busy - ours))


class Bench:
    def __init__(self, args: argparse.Namespace, out: Path) -> None:
        self.args = args
        self.out = out
        self.procs = Processes(out / "logs")
        self.runs = 0
        self.upstream_port = 0
        self.redis_url: str | None = None
        # The fixed-rate, RSS, probe and profile runs log as the first mode asked for.
        self.logs = args.logs != "off"

    # servers

    def start_gateway(self, name: str, logs: bool | None = None, **env: str) -> tuple[Child, str]:
        """A gateway on core ``--server-cpu``; ``logs``: its default level (``info``, one
        access line per request into its log file) or ``warning`` (no access lines)."""
        port = free_port()
        upstream = f"http://{HOST}:{self.upstream_port}"
        logs = self.logs if logs is None else logs
        settings = {
            "GATEWAY_RTB_UPSTREAM_URL": upstream,
            "GATEWAY_CORE_API_URL": upstream,
            "GATEWAY_CORE_API_V2_URL": upstream,
            "GATEWAY_LOG_LEVEL": "info" if logs else "warning",
            "GATEWAY_LOG_FORMAT": "json",
            "GATEWAY_DRAIN_DELAY_S": "0",
            **dict(kv.split("=", 1) for kv in self.args.gateway_env),
            **env,
        }
        child = self.procs.start(
            name,
            [sys.executable, "-m", "gateway", "serve", "--host", HOST, "--port", str(port)],
            env=clean_env(settings),
            cpus=[self.args.server_cpu],
        )
        url = f"http://{HOST}:{port}"
        wait_http(url + "/readyz", child)
        return child, url

    def flush_redis(self) -> None:
        if not self.redis_url:
            return
        port = int(self.redis_url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection((HOST, port), timeout=5) as sock:
            sock.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
            sock.recv(64)

    def cpu_seen(self) -> CpuSeen:
        """Machine-wide busy and steal time, and the part of it that is ours."""
        busy, steal = machine_cpu()
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        live = sum(cpu_of(family(c.pid)) for c in self.procs.children if c.alive())
        ours = kids.ru_utime + kids.ru_stime + me.ru_utime + me.ru_stime + live
        return CpuSeen(busy, steal, ours)

    # load

    def wrk(self, url: str, seconds: float, **lua_env: Any) -> dict[str, Any]:
        self.runs += 1
        env = clean_env({k: str(v) for k, v in lua_env.items()})
        child = self.procs.start(
            f"wrk-{self.runs:02d}",
            [
                "wrk", "-t1", f"-c{self.args.connections}", f"-d{seconds:g}s",
                "--timeout", "5s", "--latency", "-s", str(LUA), url + "/rtbs.json",
            ],
            env=env,
            cpus=[self.args.load_cpu],
        )  # fmt: skip
        child.proc.wait(timeout=seconds + 60)
        for line in child.log.read_text().splitlines():
            if line.startswith("BENCH_RESULT "):
                return json.loads(line.split(" ", 1)[1])
        raise RuntimeError(f"wrk printed no result:\n{child.tail()}")

    def rate(self, port: int, **opts: Any) -> dict[str, Any]:
        self.runs += 1
        argv = [
            sys.executable, str(ROOT / "loadtests" / "rateclient.py"), "--port", str(port),
            "--rate", str(self.args.rate), "--duration", str(self.args.duration),
            "--warmup", str(self.args.warmup),
        ]  # fmt: skip
        for k, v in opts.items():
            argv += [f"--{k}", str(v)]
        child = self.procs.start(f"rate-{self.runs:02d}", argv, cpus=[self.args.load_cpu])
        child.proc.wait(timeout=self.args.duration + self.args.warmup + 120)
        lines = [ln for ln in child.log.read_text().splitlines() if ln.startswith("{")]
        if not lines:
            raise RuntimeError(f"rate client printed no result:\n{child.tail()}")
        return json.loads(lines[-1])

    def throughput(
        self, scenario: str, url: str, server: Child, mode: str, **lua: Any
    ) -> dict[str, Any]:
        """Warm up, then one measured wrk run; CPU and memory of the server around it."""
        a = self.args
        # Repeat callers are primed by the warm-up; unique ones must stay new, so the
        # warm-up draws its callers from another range.
        warm = {**lua, "BENCH_MODE": mode}
        if mode == "unique":
            warm["BENCH_START"] = WARMUP_AT
        self.wrk(url, a.warmup, **warm)
        pids = family(server.pid)
        before = _metrics(url) if "gateway" in scenario else None
        cpu0, t0, seen0 = cpu_of(pids), time.monotonic(), self.cpu_seen()
        result = self.wrk(url, a.duration, BENCH_MODE=mode, **lua)
        wall = time.monotonic() - t0
        cpu = cpu_of(pids) - cpu0
        mem = memory_of(pids)
        other = self.cpu_seen().minus(seen0)
        row = {
            "scenario": scenario,
            "rps": result["requests"] / (result["duration_us"] / 1e6),
            "p50_ms": result["p50_us"] / 1000,
            "p99_ms": result["p99_us"] / 1000,
            "errors": sum(result[k] for k in ("connect", "read", "write", "status", "timeout")),
            "cpu_pct": 100 * cpu / wall,
            "cpu_us_per_req": 1e6 * cpu / max(1, result["requests"]),
            "peak_rss_mib": mem["VmHWM"] / 1024,
            "requests": result["requests"],
            # What one fully used core would serve at this CPU cost per request.
            "capacity_rps": result["requests"] / cpu if cpu > 0 else 0.0,
            "other_cpu_pct": 100 * other.foreign / wall,
            "steal_pct": 100 * other.steal / wall,
        }
        if before is not None:
            after = _metrics(url)
            shield = _shield_delta(before, after)
            row["shield"] = shield
        print(_fmt_row(row), flush=True)
        return row

    def profile(self, scenario: str, url: str, server: Child, mode: str, **lua: Any) -> list[str]:
        """py-spy the gateway while wrk drives the same scenario; hot spots per request."""
        spy = py_spy()
        if spy is None:
            return ["py-spy not available (uv tool run py-spy)"]
        a = self.args
        raw = (
            self.out / f"profile-{scenario.replace(' ', '_').replace('(', '').replace(')', '')}.txt"
        )
        self.runs += 1
        recorder = self.procs.start(
            f"py-spy-{self.runs:02d}",
            [*spy, "record", "-p", str(server.pid), "-d", f"{a.duration:g}", "-r", "200",
             "-f", "raw", "-o", str(raw)],
            cpus=[a.load_cpu],
        )  # fmt: skip
        time.sleep(1.0)  # py-spy attaches before the load starts (uv may fetch it first)
        cpu0 = cpu_of([server.pid])
        result = self.wrk(url, a.duration, BENCH_MODE=mode, **lua)
        cpu = cpu_of([server.pid]) - cpu0
        try:
            recorder.proc.wait(timeout=a.duration + 60)
        except subprocess.TimeoutExpired:
            self.procs.stop(recorder)
        if not raw.exists():
            return [f"py-spy wrote no profile:\n{recorder.tail()}"]
        prof = hotspots.parse(raw.read_text())
        per_req = 1e6 * cpu / max(1, result["requests"])
        rps = result["requests"] / (result["duration_us"] / 1e6)
        head = f"profile of '{scenario}' ({rps:,.0f} req/s under py-spy; raw stacks: {raw.name})"
        return [head, *hotspots.report(prof, per_req)]


def _metrics(url: str) -> dict[str, Any]:
    status, body = http("GET", url + "/metrics", timeout=10)
    return promtext.parse(body.decode()) if status == 200 else {}


def _server_side(url: str) -> dict[str, float]:
    """The gateway's own view of the run just made: p99 of /rtbs.json and of its upstream."""
    m = _metrics(url)
    route = promtext.histograms(m, "gateway_http_request_duration_seconds", "route")
    upstream = promtext.histograms(m, "gateway_upstream_request_duration_seconds", "upstream")
    ping = route.get("/rtbs.json")
    rtb = upstream.get("rtb")
    return {
        "server_p99_ms": ping.quantile(0.99) * 1000 if ping else float("nan"),
        "upstream_p99_ms": rtb.quantile(0.99) * 1000 if rtb else 0.0,
    }


def _shield_delta(before: dict, after: dict) -> dict[str, int]:
    name = "gateway_shield_lookups_total"
    old = promtext.by_label(before, name, "result")
    return {
        k: int(v - old.get(k, 0.0))
        for k, v in promtext.by_label(after, name, "result").items()
        if v - old.get(k, 0.0)
    }


def _fmt_row(row: dict[str, Any]) -> str:
    shield = row.get("shield")
    note = ""
    if shield is not None:
        note = " shield " + (",".join(f"{k}={v}" for k, v in shield.items()) or "inactive")
    return (
        f"  {row['scenario']:<36} {row['rps']:>9,.0f} req/s  p50 {row['p50_ms']:7.2f} ms  "
        f"p99 {row['p99_ms']:7.2f} ms  err {row['errors']:>5}  CPU {row['cpu_pct']:5.1f}%  "
        f"{row['cpu_us_per_req']:6.0f} µs/req  peak RSS {row['peak_rss_mib']:6.1f} MiB  "
        f"other CPU {row['other_cpu_pct']:4.0f}%{note}"
    )


# -- the scenarios ----------------------------------------------------------------------------


def run_throughput(b: Bench, shield_on: bool) -> tuple[list[dict[str, Any]], list[dict]]:
    """Every scenario ``--rounds`` times, interleaved; the best round of each is kept.

    Noise on a shared machine only ever lowers throughput, so the best of a few
    interleaved rounds is the fairest estimate of each; every round is kept in the results.
    """
    a = b.args
    print("\nThroughput (wrk, closed loop, server pinned to core "
          f"{a.server_cpu}, load on core {a.load_cpu}; best of {a.rounds} rounds; request "
          f"logs {a.logs}):", flush=True)  # fmt: skip

    scenarios: list[tuple[str, Any, str, dict[str, Any]]] = []
    for logs in log_modes(a.logs):
        tag = scenario_tag(a.logs, logs)

        def proxy(logs: bool = logs, tag: str = tag) -> tuple[Child, str]:
            child, port = nginx.start_proxy(
                b.procs,
                b.upstream_port,
                cpus=[a.server_cpu],
                access_log=logs,
                name=slug("nginx proxy" + tag),
            )
            return child, f"http://{HOST}:{port}"

        scenarios.append(
            (
                "nginx proxy_pass" + tag,
                proxy,
                "repeat",
                {"BENCH_START": HIT_CALLERS_AT, "BENCH_CALLERS": 100},
            )
        )
        stores: list[tuple[str, dict[str, str]]] = [("memory", {})]
        if b.redis_url and shield_on:
            stores.append(("redis", {"GATEWAY_REDIS_URL": b.redis_url}))
        for store, env in stores:
            for path, mode, lua in (
                ("hit", "repeat", {"BENCH_START": HIT_CALLERS_AT, "BENCH_CALLERS": 100}),
                ("forward", "unique", {"BENCH_START": FORWARD_AT}),
            ):
                name = f"gateway {path} ({store}){tag}"

                def start(
                    name: str = name, env: dict[str, str] = env, logs: bool = logs
                ) -> tuple[Child, str]:
                    return b.start_gateway(slug(name), logs, **env)

                scenarios.append((name, start, mode, lua))
    only = [w.strip() for w in a.only.split(",") if w.strip()]
    if only:
        scenarios = [
            s for s in scenarios if s[0].startswith("nginx") or any(w in s[0] for w in only)
        ]
    best: dict[str, dict[str, Any]] = {}
    every = []
    for round_no in range(1, a.rounds + 1):
        for name, start, mode, lua in scenarios:
            b.flush_redis()
            server, url = start()
            row = b.throughput(name, url, server, mode, **lua)
            b.procs.stop(server)
            row["round"] = round_no
            every.append(row)
            if name not in best or row["rps"] > best[name]["rps"]:
                best[name] = row
    return [best[name] for name, *_ in scenarios], every


def slug(name: str) -> str:
    """A scenario's name as a file name: ``gateway hit (memory) [logs off]`` ->
    ``gateway-hit-memory-logs-off``."""
    return "-".join("".join(c if c.isalnum() else " " for c in name).split())


def log_modes(choice: str) -> list[bool]:
    """Request logs on (True) and/or off, the one the targets are judged on first."""
    return {"on": [True], "off": [False], "both": [True, False]}[choice]


def scenario_tag(choice: str, logs: bool) -> str:
    """The suffix that tells a second mode's rows apart (none for the first mode)."""
    return " [logs off]" if choice == "both" and not logs else ""


def ratios(throughput: list[dict[str, Any]], choice: str) -> list[str]:
    """Each gateway row against nginx with the same request logs, by req/s and per CPU."""
    rows = {r["scenario"]: r for r in throughput}
    out = []
    for logs in log_modes(choice):
        tag = scenario_tag(choice, logs)
        base = rows.get("nginx proxy_pass" + tag)
        if not base:
            continue
        word = "on for both (nginx access_log to a file, the gateway's default level)"
        out.append(f"  request logs {word if logs else 'off on both sides'}:")
        for r in throughput:
            same_logs = r["scenario"].endswith(" [logs off]") == bool(tag)
            if not r["scenario"].startswith("gateway") or not same_logs:
                continue
            per_cpu = r["capacity_rps"] / max(1.0, base["capacity_rps"])
            out.append(
                f"    {r['scenario'].removesuffix(tag):<24} {r['rps'] / base['rps']:6.1%} of "
                f"nginx's req/s, {per_cpu:6.1%} per CPU second "
                f"({r['cpu_us_per_req']:.0f} vs {base['cpu_us_per_req']:.0f} µs/req)"
            )
    return out


def run_fixed_rate(b: Bench) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Direct, forward and hit at one fixed rate, ``--rounds`` times; the median kept."""
    a = b.args
    print(f"\nFixed rate {a.rate:,.0f} req/s (open loop, latency from the scheduled send; "
          f"median of {a.rounds} rounds by p99):", flush=True)  # fmt: skip
    every: list[dict[str, Any]] = []

    def record(
        target: str, round_no: int, result: dict[str, Any], server: dict[str, float] | None = None
    ) -> None:
        sched = result["from_schedule"]
        sent = result["from_send"]
        row = {
            "target": target,
            "round": round_no,
            "rate": a.rate,
            "achieved_rps": result["achieved_rps"],
            "p50_ms": sched["p50_us"] / 1000,
            "p99_ms": sched["p99_us"] / 1000,
            "p999_ms": sched["p999_us"] / 1000,
            "max_ms": sched["max_us"] / 1000,
            "p99_from_send_ms": sent["p99_us"] / 1000,
            "errors": result["errors"],
            "statuses": result["statuses"],
            **(server or {}),
        }
        every.append(row)
        inside = ""
        if server:
            inside = f"; gateway's own p99 {server['server_p99_ms']:.2f} ms"
            if "forward" in target:  # a hit run's upstream calls are only its warm-up
                inside += f", upstream call p99 {server['upstream_p99_ms']:.2f} ms"
        print(
            f"  {target:<26} p50 {row['p50_ms']:6.2f} ms  p99 {row['p99_ms']:6.2f} ms  "
            f"p99.9 {row['p999_ms']:6.2f} ms  max {row['max_ms']:7.2f} ms  "
            f"(p99 from send {row['p99_from_send_ms']:.2f} ms{inside})  errors {row['errors']}",
            flush=True,
        )

    for round_no in range(1, a.rounds + 1):
        shift = round_no * 1_000_000
        result = b.rate(b.upstream_port, mode="unique", start=RATE_FORWARD_AT + shift)
        record("direct to upstream", round_no, result)
        gw, url = b.start_gateway("gateway-rate-forward")
        port = int(url.rsplit(":", 1)[1])
        result = b.rate(port, mode="unique", start=RATE_FORWARD_AT + 10_000_000 + shift)
        record("via gateway, forward", round_no, result, _server_side(url))
        b.procs.stop(gw)
        gw, url = b.start_gateway("gateway-rate-hit")
        port = int(url.rsplit(":", 1)[1])
        result = b.rate(port, mode="repeat", start=RATE_HIT_AT)
        record("via gateway, shield hit", round_no, result, _server_side(url))
        b.procs.stop(gw)
        if b.redis_url:
            # Production's path: a new caller, forwarded through the Redis shield.
            b.flush_redis()
            gw, url = b.start_gateway("gateway-rate-forward-redis", GATEWAY_REDIS_URL=b.redis_url)
            port = int(url.rsplit(":", 1)[1])
            result = b.rate(port, mode="unique", start=RATE_FORWARD_AT + 40_000_000 + shift)
            record(REDIS_FORWARD, round_no, result, _server_side(url))
            b.procs.stop(gw)
    medians = []
    targets = ["direct to upstream", "via gateway, forward", "via gateway, shield hit"]
    if b.redis_url:
        targets.append(REDIS_FORWARD)
    for target in targets:
        rows = sorted((r for r in every if r["target"] == target), key=lambda r: r["p99_ms"])
        chosen = dict(rows[len(rows) // 2])
        chosen["p99_rounds_ms"] = [round(r["p99_ms"], 2) for r in rows]
        medians.append(chosen)
    return medians, every


def run_rss(b: Bench) -> dict[str, Any]:
    """Fill the in-process store with small then big numbers of distinct callers."""
    a = b.args
    print(f"\nRSS flat: in-process store, cap {a.rss_cap:,} entries "
          f"(GATEWAY_SHIELD_MEMORY_MAX_ENTRIES), {a.rss_small:,} then {a.rss_callers:,} "
          "distinct callers:", flush=True)  # fmt: skip
    gw, url = b.start_gateway("gateway-rss", GATEWAY_SHIELD_MEMORY_MAX_ENTRIES=str(a.rss_cap))
    baseline = harness.memory_kb(gw.pid)["VmRSS"]

    def misses() -> int:
        m = _metrics(url)
        return int(promtext.total(m, "gateway_shield_lookups_total", result="miss"))

    def entries() -> int:
        return int(promtext.total(_metrics(url), "gateway_shield_store_entries"))

    started = time.monotonic()
    # Phase 1: exactly rss_small distinct callers (wrap), until each has been stored once.
    while misses() < a.rss_small:
        if time.monotonic() - started > a.rss_max_s:
            raise RuntimeError("RSS fill: too slow to reach the small fill")
        b.wrk(url, 5, BENCH_MODE="unique", BENCH_START=RSS_AT, BENCH_WRAP=a.rss_small)
    if misses() == 0:
        b.procs.stop(gw)
        return {"skipped": "the shield counted no misses: no store is wired"}
    small = harness.memory_kb(gw.pid)
    small_entries = entries()
    trace = [(misses(), small["VmRSS"] / 1024)]
    print(f"  {misses():>9,} callers: RSS {small['VmRSS'] / 1024:7.1f} MiB, "
          f"store {small_entries:,} entries", flush=True)  # fmt: skip
    # Phase 2: new callers until rss_callers distinct ones have been seen in all.
    next_at = RSS_AT + a.rss_small
    while (done := misses()) < a.rss_callers:
        if time.monotonic() - started > a.rss_max_s:
            print(f"  stopped at the time limit ({a.rss_max_s:.0f}s)")
            break
        result = b.wrk(url, 20, BENCH_MODE="unique", BENCH_START=next_at)
        next_at += result["requests"] + 10_000  # skip the ones possibly in flight at the end
        point = (misses(), harness.memory_kb(gw.pid)["VmRSS"] / 1024)
        trace.append(point)
        print(f"  {point[0]:>9,} callers: RSS {point[1]:7.1f} MiB", flush=True)  # fmt: skip
    del done
    big = harness.memory_kb(gw.pid)
    total = misses()
    big_entries = entries()
    b.procs.stop(gw)
    change = (big["VmRSS"] - small["VmRSS"]) / small["VmRSS"]
    # Other per-caller structures with their own bounds (a phone-normalisation cache, the
    # allocator's arenas) fill later than the store; the curve after 100k callers says
    # whether anything is still growing.
    later = next((rss for n, rss in trace if n >= 100_000), None)
    change_after_100k = (big["VmRSS"] / 1024 - later) / later if later else None
    per_entry = (small["VmRSS"] - baseline) * 1024 / max(1, small_entries)
    row = {
        "cap": a.rss_cap,
        "small_callers": a.rss_small,
        "big_callers": total,
        "rss_start_mib": baseline / 1024,
        "rss_small_mib": small["VmRSS"] / 1024,
        "rss_big_mib": big["VmRSS"] / 1024,
        "peak_mib": big["VmHWM"] / 1024,
        "entries_small": small_entries,
        "entries_big": big_entries,
        "change": change,
        "change_after_100k": change_after_100k,
        "bytes_per_entry_estimate": per_entry,
        "trace_callers_rss_mib": trace,
        "seconds": time.monotonic() - started,
    }
    print(f"  RSS {row['rss_small_mib']:.1f} -> {row['rss_big_mib']:.1f} MiB ({change:+.1%}); "
          f"~{per_entry:,.0f} bytes per stored caller (RSS growth / entries at the small fill)",
          flush=True)  # fmt: skip
    if change_after_100k is not None:
        print(f"  from 100k callers on: {later:.1f} -> {row['rss_big_mib']:.1f} MiB "
              f"({change_after_100k:+.1%})", flush=True)  # fmt: skip
    return row


# -- report ---------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def verdicts(results: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    rows = {r["scenario"]: r for r in results["throughput"]}
    base = rows.get("nginx proxy_pass", {}).get("rps")
    out: list[tuple[str, bool | None, str]] = []
    for path in ("hit", "forward"):
        row = rows.get(f"gateway {path} (memory)")
        if row and base:
            ratio = row["rps"] / base
            active = bool(row.get("shield"))
            note = "" if active else " (shield inactive: every ping forwarded)"
            cap = row["capacity_rps"] / max(1.0, rows["nginx proxy_pass"]["capacity_rps"])
            out.append(
                (f"{path} ≥ {TARGETS[path]:.0%} of nginx", ratio >= TARGETS[path],
                 f"{row['rps']:,.0f} / {base:,.0f} req/s = {ratio:.1%}{note}; per CPU "
                 f"second {cap:.1%} ({row['cpu_us_per_req']:.0f} vs "
                 f"{rows['nginx proxy_pass']['cpu_us_per_req']:.0f} µs/req)")
            )  # fmt: skip
    rate = {r["target"]: r for r in results.get("fixed_rate", [])}
    if "direct to upstream" in rate and "via gateway, forward" in rate:
        added = rate["via gateway, forward"]["p99_ms"] - rate["direct to upstream"]["p99_ms"]
        out.append(
            (f"added p99 ≤ {TARGETS['added_p99_ms']:g} ms at {results['args']['rate']} req/s",
             added <= TARGETS["added_p99_ms"],
             f"{rate['via gateway, forward']['p99_ms']:.2f} - "
             f"{rate['direct to upstream']['p99_ms']:.2f} = {added:.2f} ms")
        )  # fmt: skip
    if "direct to upstream" in rate and REDIS_FORWARD in rate:
        added = rate[REDIS_FORWARD]["p99_ms"] - rate["direct to upstream"]["p99_ms"]
        out.append(
            (f"added p99 ≤ {TARGETS['added_p99_redis_ms']:g} ms at {results['args']['rate']} "
             "req/s, forward through Redis",
             added <= TARGETS["added_p99_redis_ms"],
             f"{rate[REDIS_FORWARD]['p99_ms']:.2f} - "
             f"{rate['direct to upstream']['p99_ms']:.2f} = {added:.2f} ms")
        )  # fmt: skip
    rss = results.get("rss")
    if rss and "change" in rss:
        out.append(
            (f"RSS flat ±{TARGETS['rss_flat']:.0%} (cap {rss['cap']:,})",
             abs(rss["change"]) <= TARGETS["rss_flat"],
             f"{rss['rss_small_mib']:.1f} MiB at {rss['small_callers']:,} callers -> "
             f"{rss['rss_big_mib']:.1f} MiB at {rss['big_callers']:,} ({rss['change']:+.1%})"
             + (f"; {rss['change_after_100k']:+.1%} from 100k callers on"
                if rss.get("change_after_100k") is not None else ""))
        )  # fmt: skip
    elif rss:
        out.append(("RSS flat", None, rss.get("skipped", "not measured")))
    return out


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# {results['title']}", "", f"Machine: {results['machine']}", ""]
    lines += [
        "| scenario | req/s | vs nginx | p50 ms | p99 ms | errors | CPU % | µs CPU/req "
        "| req/s per CPU core | vs nginx | peak RSS MiB | other CPU % |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    bases = {r["scenario"]: r for r in results["throughput"] if r["scenario"].startswith("nginx")}
    for r in results["throughput"]:
        off = r["scenario"].endswith("[logs off]")
        nginx_row = bases.get("nginx proxy_pass" + (" [logs off]" if off else ""))
        nginx_row = nginx_row or results["throughput"][0]
        base, base_cap = nginx_row["rps"], nginx_row["capacity_rps"] or 1.0
        lines.append(
            f"| {r['scenario']} | {r['rps']:,.0f} | {r['rps'] / base:.1%} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['errors']} | {r['cpu_pct']:.0f} | {r['cpu_us_per_req']:.0f} | "
            f"{r['capacity_rps']:,.0f} | {r['capacity_rps'] / base_cap:.1%} | "
            f"{r['peak_rss_mib']:.1f} | {r['other_cpu_pct']:.0f} |"
        )
    if results.get("fixed_rate"):
        lines += ["", f"Fixed rate {results['args']['rate']} req/s (open loop):", "",
                  "| target | p50 ms | p99 ms | p99.9 ms | max ms | errors |",
                  "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for r in results["fixed_rate"]:
            lines.append(
                f"| {r['target']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['p999_ms']:.2f} | "
                f"{r['max_ms']:.2f} | {r['errors']} |"
            )
    lines += [
        "",
        "req/s is the best of the rounds (wrk, closed loop). CPU % is the server's use of its "
        "core; when nginx stays well under 100% its number is bounded by core 1 (wrk and the "
        "upstream), so 'req/s per CPU core' (requests / server CPU seconds) is shown as well: "
        "it is what each server would do with a whole core to itself. Other CPU % is what the "
        "rest of the machine (not this bench) used meanwhile, in % of one core: high values "
        "mean a noisy run.",
    ]
    if results.get("ratios"):
        lines += ["", "Gateway vs nginx with the same request logs:", "", "```"]
        lines += [*results["ratios"], "```"]
    lines += ["", "| target | result | measured |", "| --- | --- | --- |"]
    for name, ok, detail in results["verdicts"]:
        word = "n/a" if ok is None else ("met" if ok else "MISSED")
        lines.append(f"| {name} | {word} | {detail} |")
    if results.get("profiles"):
        lines += ["", "Profiles (py-spy, self time per request):", "", "```"]
        for block in results["profiles"]:
            lines += block
            lines.append("")
        lines.append("```")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    ensure_tools()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = OUT / f"bench-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {
        "title": f"rtb-gateway vs nginx, {dt.date.today().isoformat()}",
        "machine": machine(),
        "args": {k: v for k, v in vars(args).items()},
        "pinning": f"server core {args.server_cpu}; wrk, rate client, upstream nginx and "
        f"redis-server core {args.load_cpu}",
    }
    print(f"loadtests/bench: {results['machine']}\n  {results['pinning']}; output {out}")
    bench = Bench(args, out)
    seen = bench.cpu_seen()
    time.sleep(2.0)
    idle_load = bench.cpu_seen().minus(seen)
    results["other_cpu_at_start_pct"] = 100 * idle_load.foreign / 2.0
    print(f"  other processes used {results['other_cpu_at_start_pct']:.0f}% of a core before "
          "the start" + (" (a busy machine makes noisy numbers)"
                         if results["other_cpu_at_start_pct"] > 20 else ""))  # fmt: skip
    with harness.signals_raise(), bench.procs:
        _, bench.upstream_port = nginx.start_upstream(bench.procs, cpus=[args.load_cpu])
        if not args.no_redis:
            _, bench.redis_url = harness.start_redis(bench.procs, cpus=[args.load_cpu])
        # Is a shield wired? One repeat ping tells: the second answer is a hit.
        gw, url = bench.start_gateway("gateway-probe")
        body = b'{"key":"k","publisher_id":"p","caller_number":"+14155550100"}'
        hdr = {"Content-Type": "application/json"}
        http("POST", url + "/rtbs.json", body, headers=hdr)
        _, again = http("POST", url + "/rtbs.json", body, headers=hdr)
        shield_on = b"retreaver_ping_shield" in again
        bench.procs.stop(gw)
        print(f"  ping shield {'active' if shield_on else 'NOT active (every ping forwarded)'}")

        results["throughput"], results["throughput_rounds"] = run_throughput(bench, shield_on)
        results["ratios"] = ratios(results["throughput"], args.logs)
        print("\nGateway vs nginx, same request logs:\n" + "\n".join(results["ratios"]))
        if not args.skip_rate:
            results["fixed_rate"], results["fixed_rate_rounds"] = run_fixed_rate(bench)
        if not args.skip_rss:
            results["rss"] = run_rss(bench)
        results["verdicts"] = verdicts(results)
        missed = {name.split(" ")[0] for name, ok, _ in results["verdicts"] if ok is False}
        profiles = []
        if args.profile == "always" or (args.profile == "auto" and missed & {"hit", "forward"}):
            print("\nProfiling (py-spy) the gateway paths...", flush=True)
            for path, mode, lua in (
                ("hit", "repeat", {"BENCH_START": HIT_CALLERS_AT, "BENCH_CALLERS": 100}),
                ("forward", "unique", {"BENCH_START": FORWARD_AT + 40_000_000}),
            ):
                if args.profile == "auto" and path not in missed:
                    continue
                store_env = {}
                if args.profile_store == "redis" and bench.redis_url:
                    bench.flush_redis()
                    store_env["GATEWAY_REDIS_URL"] = bench.redis_url
                gw, url = bench.start_gateway(f"gateway-profile-{path}", **store_env)
                warm = {**lua, "BENCH_MODE": mode}
                if mode == "unique":
                    warm["BENCH_START"] = WARMUP_AT + 5_000_000
                bench.wrk(url, args.warmup, **warm)
                block = bench.profile(f"gateway {path}", url, gw, mode, **lua)
                bench.procs.stop(gw)
                profiles.append(block)
                print("\n".join(block), flush=True)
        results["profiles"] = profiles

    results["seconds"] = round(time.monotonic() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(markdown(results))
    chart.draw(results, out / "bench.png")
    docs = ROOT / "docs" / "pages" / "img" / "bench.png"
    docs.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "bench.png", docs)
    print("\nTargets:")
    for name, ok, detail in results["verdicts"]:
        word = "n/a" if ok is None else ("met" if ok else "MISSED")
        print(f"  [{word}] {name}: {detail}")
    print(f"\nbench took {results['seconds']:.0f}s; {out / 'results.md'}, {docs}")
    failed = any(ok is False for _, ok, _ in results["verdicts"])
    return 1 if (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
