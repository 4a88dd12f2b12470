"""``loadtests/run``: one command from a clean clone to an SLO verdict.

It starts a private redis-server, the Retreaver sandbox and the gateway on free loopback
ports, points the gateway at the sandbox, runs Locust headless (``locustfile.py``) for a
given time and user count, keeps Locust's CSV and HTML report under ``loadtests/out/``,
then judges the run (``verdict.py``) and exits 1 on any miss. Whatever happens (a failed
check, an exception, Ctrl-C, SIGTERM) everything it started is stopped.

Locust is closed-loop, so the p99 verdict reads the gateway's own histogram
(``gateway_http_request_duration_seconds``); Locust's client-side numbers are printed
beside it for reference only.

Usage::

    loadtests/run --smoke                 # < 60 s, what CI runs
    loadtests/run --users 50 --time 2m --user-rps 10
    loadtests/run --user-rps 0 --users 30 # as fast as the box allows (saturation)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

import harness
import promtext
import verdict
from harness import HOST, ROOT, Processes, clean_env, free_port, http, wait_http

OUT = ROOT / "loadtests" / "out"


def _seconds(text: str) -> int:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text.strip())
    if not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 2m, 1h)")
    h, m, s = (int(g or 0) for g in match.groups())
    return h * 3600 + m * 60 + s


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="loadtests/run", description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="short run for CI (< 60 s in all)")
    p.add_argument("--users", type=int, default=50, help="concurrent Locust users (50)")
    p.add_argument("--spawn-rate", type=float, default=None, help="users started per second")
    p.add_argument("--time", type=_seconds, default=60, help="run time, e.g. 90s, 5m (60s)")
    p.add_argument(
        "--user-rps",
        type=float,
        default=10.0,
        help="tasks per second per user; 0 = no pause (saturates the box) (10)",
    )
    p.add_argument("--mix", default=None, help="LOADTEST_MIX, e.g. unique=40,repeat=35,...")
    p.add_argument(
        "--core-api",
        choices=("optional", "required", "off"),
        default="optional",
        help="Core API lookup users: 404 'no such route' tolerated / a failure / no lookups",
    )
    p.add_argument("--no-redis", action="store_true", help="in-process shield store instead")
    p.add_argument("--log-level", default="info", help="the gateway's GATEWAY_LOG_LEVEL")
    p.add_argument("--slo-rtb-ms", type=float, default=50.0, help="p99 of POST /rtbs.json")
    p.add_argument("--slo-confirm-ms", type=float, default=50.0, help="p99 of confirmations")
    p.add_argument("--slo-lookup-ms", type=float, default=250.0, help="p99 of Core API routes")
    p.add_argument("--max-failure-ratio", type=float, default=0.001)
    p.add_argument("--out", type=Path, default=None, help="output folder (default: new)")
    args = p.parse_args(argv)
    if args.smoke:
        args.users, args.time, args.user_rps = 20, 20, 8.0
    if args.spawn_rate is None:
        args.spawn_rate = max(1.0, args.users / 2)
    return args


def _out_dir(chosen: Path | None) -> Path:
    out = chosen or OUT / time.strftime("run-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    latest = OUT / "latest-run"
    if chosen is None:
        latest.unlink(missing_ok=True)
        latest.symlink_to(out.name)
    return out


def _metrics(url: str) -> dict[str, dict[Any, float]]:
    status, body = http("GET", url + "/metrics", timeout=10)
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status}")
    return promtext.parse(body.decode())


def _locust_totals(prefix: Path) -> tuple[int, int, list[dict[str, str]]]:
    path = Path(f"{prefix}_stats.csv")
    if not path.exists():
        return 0, 0, []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    agg = next((r for r in rows if r.get("Name") == "Aggregated"), None)
    if agg is None:
        return 0, 0, rows
    return int(agg["Request Count"]), int(agg["Failure Count"]), rows


def run(args: argparse.Namespace) -> int:
    out = _out_dir(args.out)
    py = sys.executable
    slos = verdict.Slos(
        args.slo_rtb_ms, args.slo_confirm_ms, args.slo_lookup_ms, args.max_failure_ratio
    )
    started = time.monotonic()
    print(f"loadtests/run: {args.users} users, {args.time}s, output in {out}")
    with harness.signals_raise(), Processes(out / "logs") as procs:
        env: dict[str, str] = {}
        if not args.no_redis:
            _, redis_url = harness.start_redis(procs)
            env["GATEWAY_REDIS_URL"] = redis_url
        sb_port = free_port()
        sandbox_url = f"http://{HOST}:{sb_port}"
        sandbox = procs.start(
            "sandbox", [py, "-m", "gateway", "sandbox", "--host", HOST, "--port", str(sb_port)]
        )
        gw_port = free_port()
        gateway_url = f"http://{HOST}:{gw_port}"
        env.update(
            GATEWAY_RTB_UPSTREAM_URL=sandbox_url,
            GATEWAY_CORE_API_URL=sandbox_url,
            GATEWAY_CORE_API_V2_URL=sandbox_url,
            GATEWAY_DRAIN_DELAY_S="0",
            GATEWAY_LOG_FORMAT="json",
            GATEWAY_LOG_LEVEL=args.log_level,
        )
        gateway = procs.start(
            "gateway",
            [py, "-m", "gateway", "serve", "--host", HOST, "--port", str(gw_port)],
            env=clean_env(env),
        )
        wait_http(sandbox_url + "/healthz", sandbox)
        # Reservations outlive the run, so a repeat caller is one upstream request.
        ttl = json.dumps({"ttl_s": args.time + 600}).encode()
        http("POST", sandbox_url + "/_sandbox/config", ttl, headers=_JSON)
        wait_http(gateway_url + "/readyz", gateway)
        http("DELETE", sandbox_url + "/_sandbox/requests")
        before = _metrics(gateway_url)
        print(
            f"  up in {time.monotonic() - started:.1f}s: gateway {gateway_url}, "
            f"sandbox {sandbox_url}{', redis' if not args.no_redis else ''}"
        )

        summary_path = out / "summary.json"
        prefix = out / "locust"
        lt_env = {
            "LOADTEST_SUMMARY": str(summary_path),
            "LOADTEST_CORE_API": args.core_api,
            "LOADTEST_USER_RPS": str(args.user_rps),
            # Enough fresh callers for the run (Locust makes more on the fly if not).
            "LOADTEST_UNIQUE_POOL": str(_pool_size(args)),
        }
        if args.mix:
            lt_env["LOADTEST_MIX"] = args.mix
        locust = procs.start(
            "locust",
            [
                py, "-m", "locust",
                "-f", str(ROOT / "loadtests" / "locustfile.py"),
                "--headless", "--only-summary",
                "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.time}s",
                "--host", gateway_url,
                "--csv", str(prefix), "--html", str(out / "report.html"),
                "--stop-timeout", "5", "--exit-code-on-error", "0",
                "--loglevel", "WARNING",
            ],
            env=clean_env(lt_env),
        )  # fmt: skip
        servers = [c for c in procs.children if c.name != "locust"]
        cpu0 = {c.name: harness.cpu_seconds(c.pid) for c in servers}
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        try:
            code = locust.proc.wait(timeout=args.time + 90)
        except Exception:
            print(f"locust did not finish in time:\n{locust.tail()}", file=sys.stderr)
            raise
        if code != 0:
            raise RuntimeError(f"locust exited {code}:\n{locust.tail()}")
        if not gateway.alive():
            raise RuntimeError(f"the gateway died during the run:\n{gateway.tail()}")
        wall = time.monotonic() - t0
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = {c.name: (harness.cpu_seconds(c.pid) - cpu0[c.name]) / wall for c in servers}
        cpu["locust"] = (kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime) / wall
        after = _metrics(gateway_url)
        status, body = http("GET", sandbox_url + "/_sandbox/requests", timeout=30)
        received = json.loads(body) if status == 200 else []
        (out / "metrics-after.txt").write_bytes(http("GET", gateway_url + "/metrics")[1])

    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    requests, failures, rows = _locust_totals(prefix)
    lat_checks, lat_rows = verdict.latency_checks(before, after, slos)
    checks = [
        *lat_checks,
        *verdict.failure_checks(requests, failures, before, after, slos),
        *verdict.upstream_checks(summary, received, before, after),
    ]
    info = verdict.info_lines(summary)
    info.append(
        "CPU during the run (% of one core; the box has "
        f"{os.cpu_count()}): " + ", ".join(f"{k} {v * 100:.0f}%" for k, v in cpu.items())
    )
    _print_report(args, rows, lat_rows, checks, info)
    ok = all(c.ok for c in checks)
    (out / "verdict.json").write_text(
        json.dumps(
            {
                "pass": ok,
                "args": {k: str(v) for k, v in vars(args).items()},
                "routes": lat_rows,
                "cpu_share": cpu,
                "checks": [c.__dict__ for c in checks],
                "seconds": round(time.monotonic() - started, 1),
            },
            indent=2,
        )
    )
    print(f"\nVERDICT: {'PASS' if ok else 'MISS'} in {time.monotonic() - started:.1f}s "
          f"(report: {out / 'report.html'})")  # fmt: skip
    return 0 if ok else 1


_JSON = {"Content-Type": "application/json"}


def _pool_size(args: argparse.Namespace) -> int:
    if args.user_rps <= 0:
        return 100_000
    return int(min(1_000_000, max(10_000, args.users * args.user_rps * args.time * 0.7)))


def _print_report(
    args: argparse.Namespace,
    rows: list[dict[str, str]],
    lat_rows: list[dict[str, Any]],
    checks: list[verdict.Check],
    info: list[str],
) -> None:
    print("\nClient side (Locust; closed-loop, so its tail understates a slow server):")
    print(f"  {'name':<40} {'reqs':>8} {'fails':>6} {'req/s':>8} {'p50':>6} {'p99':>6}")
    for r in rows:
        print(
            f"  {r['Name'][:40]:<40} {r['Request Count']:>8} {r['Failure Count']:>6} "
            f"{float(r['Requests/s']):>8.1f} {r['50%']:>6} {r['99%']:>6}"
        )
    print("\nServer side (gateway_http_request_duration_seconds, the verdict's source):")
    print(f"  {'route':<40} {'count':>8} {'p50 ms':>8} {'p99 ms':>8} {'SLO ms':>7}")
    for r in lat_rows:
        print(
            f"  {r['route'][:40]:<40} {r['count']:>8} {r['p50_ms']:>8.2f} "
            f"{r['p99_ms']:>8.2f} {r['slo_p99_ms']:>7g}"
        )
    if info:
        print()
        for line in info:
            print(line)
    print("\nChecks:")
    for c in checks:
        print(f"  [{'ok' if c.ok else 'MISS'}] {c.name}: {c.detail}")


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    try:
        return run(args)
    except (RuntimeError, OSError) as exc:
        print(f"loadtests/run: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
