"""The first start: one line says where the gateway listens and what it talks to, and
``GATEWAY_LOG_FORMAT=auto`` (the default) writes text to a terminal, JSON elsewhere."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from tests.support.ports import free_port
from tests.support.servers import GatewayProcess

pytestmark = pytest.mark.slow


def test_the_line_follows_the_bound_listener_and_names_the_upstreams() -> None:
    gw = GatewayProcess({"GATEWAY_LOG_FORMAT": "auto"}, "--sandbox")  # stderr is a pipe
    try:
        gw.wait_ready()
        gw.signal(signal.SIGTERM)
        assert gw.wait() == 0
    finally:
        _out, err = gw.stop()
    lines = [json.loads(line) for line in err.splitlines()]  # auto on a pipe: JSON only
    messages = [line["msg"] for line in lines]
    listening = [line for line in lines if line["msg"].startswith("listening on ")]
    assert len(listening) == 1
    line = listening[0]
    assert line["msg"] == f"listening on {gw.url} (live status: {gw.url}/status)"
    assert messages.index("started") < messages.index(line["msg"])  # after start-up
    assert line["rtb"] == "sandbox"
    assert line["core_api"] == "sandbox"
    assert line["shield_store"] == "in-process"
    assert line["workers"] == 1
    assert line["ledger"] == "in-process"


def test_auto_writes_text_to_a_terminal() -> None:
    port = free_port()
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_DRAIN_DELAY_S"] = "0"
    command = [sys.executable, "-m", "gateway", "serve", "--sandbox"]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=env,
    )
    os.close(secondary)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"listening on" not in seen or not seen.endswith(b"\n"):
            left = deadline - time.monotonic()
            assert left > 0, seen.decode(errors="replace")
            ready, _, _ = select.select([primary], [], [], left)
            if ready:
                seen += os.read(primary, 65536)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        os.close(primary)
    text = seen.decode()
    line = next(x for x in text.splitlines() if "listening on" in x)
    assert not line.lstrip().startswith("{")
    assert " INFO " in line
    assert f"listening on http://127.0.0.1:{port}" in line
    assert "rtb=sandbox core_api=sandbox shield_store=in-process workers=1" in line
