"""The open-file limit (issue 20, row 4): raised at start, and a warning when too low.

Real processes with a lowered ``RLIMIT_NOFILE`` (set in the child before exec), as
systemd's default soft limit of 1,024 would leave them.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gateway.config import Secret, Settings
from gateway.protect.descriptors import SPARE, needed
from tests.support.ports import free_port


def limited(soft: int, hard: int) -> Callable[[], None]:
    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return lower


def env(**gateway: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    out.update({"GATEWAY_" + k.upper(): v for k, v in gateway.items()})
    return out


def test_the_need_counts_clients_the_probe_reserve_every_pool_and_a_margin() -> None:
    settings = Settings.from_env({}, max_connections=1000, rtb_max_connections=100)
    with_redis = Settings.from_env(
        {}, max_connections=1000, rtb_max_connections=100, redis_url=Secret("redis://h/0")
    )
    assert needed(settings) == 1000 + 16 + 2 * 100 + 4 + SPARE
    assert needed(with_redis) == needed(settings) + 128


def check_config(soft: int, hard: int, **gateway: str) -> subprocess.CompletedProcess[str]:
    # A ledger secret set, so check-config has no note of its own to print on stderr.
    gateway.setdefault("ledger_secret", "a-ledger-secret-for-the-test")
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check-config"],
        env=env(**gateway),
        preexec_fn=limited(soft, hard),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_warns_when_the_hard_limit_is_below_the_need() -> None:
    short = check_config(1024, 1024)  # systemd's default, with the default 10,000 cap
    enough = check_config(1024, 1024, max_connections="300", rtb_max_connections="200")
    raisable = check_config(256, 20_000)  # serve would raise it: nothing to say
    assert short.returncode == 0
    assert json.loads(short.stdout)["GATEWAY_MAX_CONNECTIONS"] == 10_000  # stdout stays JSON
    assert short.stderr.startswith("warning: the open-file limit (1024, hard 1024)")
    assert "GATEWAY_MAX_CONNECTIONS" in short.stderr
    assert (enough.returncode, enough.stderr) == (0, "")
    assert (raisable.returncode, raisable.stderr) == (0, "")


def serve(tmp_path: Path, soft: int, hard: int, **gateway: str) -> tuple[str, int]:
    """Run ``gateway serve`` with that limit until it answers; (its log, its soft limit)."""
    port = free_port()
    log = tmp_path / f"serve-{soft}-{hard}.log"
    settings = {
        "log_format": "json",
        "drain_delay_s": "0",
        "rtb_upstream_url": "http://127.0.0.1:9",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env(**settings, **gateway),
            preexec_fn=limited(soft, hard),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
        return log.read_text(), int(line.split()[3])
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.slow
def test_serve_raises_the_soft_limit_and_warns_only_when_the_hard_one_is_short(
    tmp_path: Path,
) -> None:
    raised_log, raised = serve(tmp_path, 256, 4096, max_connections="1000")
    short_log, short = serve(tmp_path, 1024, 1024)
    assert raised == 4096
    assert "open-file limit" not in raised_log
    assert short == 1024
    warnings = [json.loads(line) for line in short_log.splitlines() if "open-file limit" in line]
    assert len(warnings) == 1
    assert warnings[0]["nofile_soft"] == 1024
    assert warnings[0]["needed"] == needed(Settings.from_env({}))
