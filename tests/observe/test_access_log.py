"""The access log written by the gateway itself (gateway/observe/access_log.py).

The same lines as the ``logging`` path printed (compared field by field, in both formats,
through the same redaction), sampling that never hides an error, and back-pressure on a
real pipe whose reader stops reading: pings are still answered, the lines that do not
fit are counted, and every line is either delivered whole or counted.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.config import ConfigError, Settings
from gateway.observe.access_log import AccessLog, LineBuffer
from gateway.observe.logs import Destination, destination, set_destination
from gateway.observe.metrics import Metrics
from tests.observe.conftest import CaptureLogs
from tests.support.servers import serve_app

# route, method, status, seconds, request id, shield, upstream seconds, foreign id
CASES: list[tuple[Any, ...]] = [
    ("/rtbs.json", "POST", 200, 0.0012345, "a" * 32, "hit", None, False),
    ("/rtbs.json", "POST", 200, 0.0456, "b" * 32, "miss", 0.0401234, False),
    ("/rtbs.json", "POST", 422, 0.0003, "c" * 32, None, None, False),
    ("/rtbs/{uuid}.json", "PUT", 502, 1.5, "req-1", None, 1.49, True),
    ("/data_writing/{key}", "GET", 200, 0.002, "d" * 32, None, 0.001, False),
    ("unmatched", "OTHER", 404, 0.0001, "e" * 32, None, None, False),
    # A client's own request id that looks like a secret: masked on both paths.
    ("/calls.json", "GET", 200, 0.003, "api_key:sekrit", None, None, True),
    ("/calls.json", "GET", 200, 0.003, "x.token=abc", None, None, True),
]


def _records_then_fast(capture_logs: CaptureLogs, fmt: str) -> tuple[list[str], list[str]]:
    """Each case through the logging path (as before) and through the new path."""
    buf = capture_logs(fmt, "info")
    dest = destination()
    assert dest is not None
    assert dest.stream is buf
    before = AccessLog(None)  # records of ``gateway.access``, formatted by our formatter
    for case in CASES:
        before.write(*case[:7], foreign_id=case[7])
    old = buf.getvalue().splitlines()
    buf.seek(0)
    buf.truncate()

    async def fast() -> None:
        access = AccessLog(dest)
        for case in CASES:
            access.write(*case[:7], foreign_id=case[7])
        assert access.buffer is not None
        access.buffer.flush()

    asyncio.run(fast())
    return old, buf.getvalue().splitlines()


def test_json_lines_carry_the_same_fields_as_the_logging_path(capture_logs: CaptureLogs) -> None:
    old, new = _records_then_fast(capture_logs, "json")
    assert len(old) == len(new) == len(CASES)
    for before, after in zip(old, new, strict=True):
        a, b = json.loads(before), json.loads(after)
        assert a.pop("ts")[:16] == b["ts"][:16]  # the same minute; milliseconds differ
        b.pop("ts")
        assert list(a) == list(b)  # same fields, same order
        assert a == b
    assert "sekrit" not in "".join(new)
    assert json.loads(new[6])["request_id"] == "api_key:***"
    assert json.loads(new[7])["request_id"] == "x.token=***"
    assert json.loads(new[4])["route"] == "/data_writing/{key}"  # the template stays readable


def test_text_lines_are_the_text_formatters_lines(capture_logs: CaptureLogs) -> None:
    old, new = _records_then_fast(capture_logs, "text")
    assert len(old) == len(new) == len(CASES)
    for before, after in zip(old, new, strict=True):
        # "2026-05-08 12:00:00,123 INFO    gateway.access: request route=... "
        assert before[:16] == after[:16]
        assert before[23:] == after[23:]
    assert "sekrit" not in "".join(new)


async def test_sampling_keeps_every_error(capture_logs: CaptureLogs) -> None:
    buf = capture_logs("json", "info")
    access = AccessLog(destination(), sample=0.0)
    for status in (200, 201, 204, 301, 400, 404, 429, 499, 500, 502, 503, 504) * 3:
        access.write("/rtbs.json", "POST", status, 0.001, "f" * 32, None, None, foreign_id=False)
    assert access.buffer is not None
    access.buffer.flush()
    statuses = [json.loads(line)["status"] for line in buf.getvalue().splitlines()]
    assert sorted(set(statuses)) == [301, 400, 404, 429, 499, 500, 502, 503, 504]
    assert len(statuses) == 9 * 3


def test_sample_setting_is_validated() -> None:
    assert Settings.from_env({}).access_log_sample == 1.0
    assert Settings.from_env({"GATEWAY_ACCESS_LOG_SAMPLE": "0.25"}).access_log_sample == 0.25
    for bad in ("1.5", "-0.1", "half"):
        with pytest.raises(ConfigError) as err:
            Settings.from_env({"GATEWAY_ACCESS_LOG_SAMPLE": bad})
        assert err.value.variable == "GATEWAY_ACCESS_LOG_SAMPLE"
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"GATEWAY_ACCESS_LOG_BUFFER_BYTES": "100"})
    assert err.value.variable == "GATEWAY_ACCESS_LOG_BUFFER_BYTES"


async def test_no_line_below_the_log_level(capture_logs: CaptureLogs, sandbox_url: str) -> None:
    buf = capture_logs("json", "warning")
    app = create_app(Settings.from_env({}, rtb_upstream_url=sandbox_url))
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as c:
        assert (await c.get("/healthz")).status_code == 200
    assert '"msg":"request"' not in buf.getvalue()


@pytest.fixture
def small_pipe() -> Iterator[tuple[int, io.TextIOWrapper]]:
    """A real pipe of one page: its read end, and its write end as a text stream."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
    stream = open(w, "w", encoding="utf-8", closefd=True)  # noqa: SIM115
    try:
        yield r, stream
    finally:
        stream.close()
        os.close(r)


def _drain(fd: int) -> bytes:
    """Everything the pipe holds now, without waiting for more."""
    os.set_blocking(fd, False)
    out = bytearray()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return bytes(out)
        if not chunk:
            return bytes(out)
        out += chunk


async def test_a_stalled_reader_drops_lines_but_never_a_ping(
    capture_logs: CaptureLogs, sandbox_url: str, small_pipe: tuple[int, io.TextIOWrapper]
) -> None:
    r, stream = small_pipe
    # Other loggers write to a buffer (they still block on a stalled destination: the
    # start and stop lines are theirs); the access lines go to the pipe.
    capture_logs("json", "info")
    set_destination(Destination(stream, True))
    metrics = Metrics()
    settings = Settings.from_env({}, rtb_upstream_url=sandbox_url, access_log_buffer_bytes=4096)
    app = create_app(settings, metrics=metrics)
    ping = {"key": "k1", "publisher_id": "p1", "caller_number": "+18558485518"}
    pings = 200
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as c:
        for _ in range(pings):  # nobody reads the pipe: it fills after ~16 lines
            r_ = await c.post("/rtbs.json", params=ping)
            assert r_.status_code == 200
        stats = (await c.get("/stats")).json()
    dropped_then = stats["access_log"]["dropped"]
    # A page in the pipe and 4 KiB pending hold a few dozen lines; the rest were refused.
    assert pings - 60 < dropped_then < pings
    # The original description was never made non-blocking (it is the shell's, too).
    assert not fcntl.fcntl(stream.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK
    delivered = _drain(r).decode().splitlines()
    lines = [json.loads(line) for line in delivered]  # each one whole
    assert all(line["msg"] == "request" for line in lines)
    dropped = metrics.registry.get_sample_value("gateway_access_log_dropped_total")
    # Every request's line was delivered whole or counted: none vanished unseen.
    assert len(lines) + dropped == pings + 1  # and /stats


async def test_pending_lines_go_out_when_the_reader_comes_back(
    small_pipe: tuple[int, io.TextIOWrapper],
) -> None:
    r, stream = small_pipe
    dropped: list[int] = []
    access = AccessLog(Destination(stream, True), max_bytes=64 * 1024, on_drop=dropped.append)
    buffer = access.buffer
    assert isinstance(buffer, LineBuffer)
    total = 100  # ~12 KiB: three times what the pipe holds
    for n in range(total):
        access.write("/rtbs.json", "POST", 200, 0.001, f"{n:032x}", "hit", None, foreign_id=False)
    buffer.flush()
    assert 0 < buffer.pending.count(b"\n") < total  # the pipe took what it could
    assert not dropped

    loop = asyncio.get_running_loop()
    got = bytearray()
    done = asyncio.Event()

    def readable() -> None:
        got.extend(os.read(r, 65536))
        if got.count(b"\n") >= total:
            done.set()

    os.set_blocking(r, False)
    loop.add_reader(r, readable)
    try:
        await asyncio.wait_for(done.wait(), timeout=10)
    finally:
        loop.remove_reader(r)
    ids = [json.loads(line)["request_id"] for line in got.decode().splitlines()]
    assert ids == [f"{n:032x}" for n in range(total)]  # whole, in order, none lost
    assert not buffer.pending
    assert not dropped


async def test_a_closed_reader_counts_the_lost_lines(capture_logs: CaptureLogs) -> None:
    logs = capture_logs("json", "info")
    dropped: list[int] = []
    r, w = os.pipe()
    with open(w, "w", encoding="utf-8") as stream:
        access = AccessLog(Destination(stream, True), on_drop=dropped.append)
        assert access.buffer is not None
        access.buffer.flush()  # opens our own description while the reader is there
        os.close(r)
        for n in range(5):
            access.write(
                "/rtbs.json", "POST", 200, 0.001, f"{n:032x}", None, None, foreign_id=False
            )
        access.buffer.flush()
        assert sum(dropped) == 5
        access.write("/rtbs.json", "POST", 500, 0.001, "f" * 32, None, None, foreign_id=False)
        access.buffer.flush()
        assert sum(dropped) == 6
    # Said once, through logging, not once per line.
    assert logs.getvalue().count("access log lines lost") == 1


async def test_close_lets_the_reader_see_the_end_and_a_later_line_reopens() -> None:
    r, w = os.pipe()
    stream = open(w, "w", encoding="utf-8")  # noqa: SIM115
    access = AccessLog(Destination(stream, True))
    assert access.buffer is not None
    for n in range(2):
        access.write("/healthz", "GET", 200, 0.001, f"{n:032x}", None, None, foreign_id=False)
        access.buffer.flush()
        access.close()
    stream.close()  # the last write end but the ones the access log opened and closed
    os.set_blocking(r, False)
    try:
        data = os.read(r, 65536)
        assert os.read(r, 65536) == b""  # end of file: no description of ours left open
    finally:
        os.close(r)
    assert [json.loads(line)["request_id"] for line in data.decode().splitlines()] == [
        f"{n:032x}" for n in range(2)
    ]
