"""/status in a real browser: headless Chromium renders the page of a real gateway process
with traffic and a frozen Redis, and the rendered DOM shows the numbers and says plainly
that the shield is bypassed. The screenshot it takes is docs/pages/img/status.png
(shown on docs/pages/status-page.md).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.support.redis_server import RedisServer
from tests.support.servers import GatewayProcess

pytestmark = pytest.mark.slow

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "pages" / "img" / "status.png"
REDIS_ALERT = "Redis unavailable: shield bypassed"


class Rendered(HTMLParser):
    """What the test reads from the dumped DOM: texts by id, alerts, route rows."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str] = {}
        self.by_id: dict[str, str] = {}
        self.alerts: dict[str, str] = {}
        self.rows: dict[str, list[str]] = {}
        self.charts: list[str] = []
        self._open: list[tuple[str, dict[str, str], list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        if "data-chart" in a:
            self.charts.append(a["data-chart"])
        self._open.append((tag, a, []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, attrs, texts = self._open.pop()
            text = "".join(texts)
            if self._open:
                self._open[-1][2].append(text if name != "td" else f"{text}\x1f")
            if "id" in attrs:
                self.by_id[attrs["id"]] = text
            if "data-alert" in attrs:
                self.alerts[attrs["data-alert"]] = text
            if "data-route" in attrs:
                self.rows[attrs["data-route"]] = text.split("\x1f")[:-1]
            if name == tag:
                return

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)


def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is needed for the status page test (apt-get install chromium)")
    return binary


def _browse(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Load ``url`` headless and let its scripts run (virtual time: the page's first
    fetch of /stats and a refresh or two) before dumping or shooting."""
    return subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1440,960",
            "--virtual-time-budget=5000",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


@pytest.fixture
def frozen_redis_gateway() -> Iterator[tuple[GatewayProcess, RedisServer]]:
    redis = RedisServer()  # its own: SIGSTOP must not freeze the session's server
    redis.start()
    gw = GatewayProcess(
        {"GATEWAY_REDIS_URL": redis.url, "GATEWAY_LOG_LEVEL": "warning"}, "--sandbox"
    )
    try:
        gw.wait_ready(timeout=60)
        yield gw, redis
    finally:
        redis.resume()
        gw.signal(signal.SIGTERM)
        try:
            gw.wait(30)
        finally:
            gw.stop()
            redis.stop()


def _ping(client: httpx.Client, n: int) -> None:
    r = client.post(
        "/rtbs.json",
        params={
            "key": "statuspage",
            "publisher_id": "p1",
            "caller_number": f"+1855{5000000 + n:07d}",
        },
    )
    assert r.status_code == 200, r.text


def test_status_page_in_chromium_shows_traffic_and_the_redis_outage(
    frozen_redis_gateway: tuple[GatewayProcess, RedisServer], tmp_path: Path
) -> None:
    gw, redis = frozen_redis_gateway
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        for n in range(40):  # shielded traffic: each caller twice, the repeat is a hit
            _ping(client, n % 20)
        assert client.get("/stats").json()["alerts"] == []
        redis.pause()
        # Pings go on while Redis is frozen, also while the browser looks.
        stop = threading.Event()
        errors: list[BaseException] = []

        def traffic() -> None:
            n = 1000
            with httpx.Client(base_url=gw.url, timeout=10) as c:
                while not stop.is_set():
                    try:
                        _ping(c, n)
                    except BaseException as exc:  # reported by the main thread
                        errors.append(exc)
                        return
                    n += 1
                    stop.wait(0.05)

        pinger = threading.Thread(target=traffic, daemon=True)
        pinger.start()
        try:
            deadline = time.monotonic() + 20
            while True:  # polling: the breaker opens after a few timed-out Redis calls
                alerts = [a["what"] for a in client.get("/stats").json()["alerts"]]
                if REDIS_ALERT in alerts or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert REDIS_ALERT in alerts
            dom = _browse(f"{gw.url}/status", tmp_path / "profile", "--dump-dom").stdout
            SCREENSHOT.parent.mkdir(exist_ok=True)
            _browse(f"{gw.url}/status", tmp_path / "profile2", f"--screenshot={SCREENSHOT}")
        finally:
            stop.set()
            pinger.join(10)
        assert not errors, errors

    page = Rendered()
    page.feed(dom)
    assert int(page.body.get("data-loaded", "0")) >= 1, dom[:2000]  # the page's JS rendered
    assert REDIS_ALERT in page.alerts, page.alerts
    assert "forwarded unshielded" in page.alerts[REDIS_ALERT]
    assert "none" not in page.alerts  # no "All clear" next to the warning
    assert page.by_id["version"] != "…"
    assert page.by_id["workers"] == "1"
    assert page.by_id["store"].startswith("redis://127.0.0.1:")
    row = page.rows["/rtbs.json"]
    assert row[0] == "/rtbs.json"
    assert float(row[1]) > 0  # req/s
    assert int(row[2].replace(",", "")) > 0  # ok answers
    assert row[10] != "–"  # shield hit ratio over the 10 s window
    assert "/rtbs.json" in page.charts
    assert page.by_id["shield-state"] == "BYPASSED"
    png = SCREENSHOT.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000
