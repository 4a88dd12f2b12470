"""Masking of secrets in log lines: every shape a key, password or token shows up in."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.observe.logs import redact
from gateway.observe.stats import RequestContext, current_request

S = "s3cr3tVALUE42"


@pytest.mark.parametrize(
    "text",
    [
        f"GET /calls.json?api_key={S}&company_id=1",
        f"POST /rtbs.json?caller_number=%2B1855&key={S}",
        f"GET /api/v2/targets/1/caller_lists/suppressed.json?key={S}",
        f"GET /data_writing/{S}?caller_number=%2B18558485518",
        f'"path": "/data_writing/{S}"',
        f"(b'authorization', b'Bearer {S}')",
        f"key={S}",
        f"Ping(key='{S}', publisher_id='p1')",
        f"{{'api_key': '{S}', 'x': 1}}",
        f'{{"key": "{S}"}}',
        f'{{"key":"{S}"}}',
        f'"msg": "body was {{\\"key\\": \\"{S}\\"}}"',
        f"b'key={S}&publisher_id=1'",
        f"url=URL('http://api.example/calls.json?api_key={S}')",
        f"http%3A%2F%2Fh%2Fx%3Fapi_key%3D{S}",
        f"Authorization: Bearer {S}",
        f"authorization={S}",
        f"[(b'host', b'x'), (b'authorization', b'Basic {S}')]",
        f"('X-Api-Key', '{S}')",
        f"redis://default:{S}@redis.internal:6379/0",
        f"rediss://:{S}@cache:6380",
        f"rediss://{S}@cache:6380",
        f"password={S}",
        f"GATEWAY_REDIS_PASSWORD: {S}",
        f"access_token={S}",
        f"client_secret: '{S}'",
    ],
)
def test_secret_is_masked(text: str) -> None:
    masked = redact(text)
    assert S not in masked
    assert "***" in masked


@pytest.mark.parametrize(
    "text",
    [
        '{"route":"/rtbs.json","method":"POST","status":200,"duration_ms":1.2}',
        "caller_number=+18558485518&publisher_id=p1",
        "https://rtb.retreaver.com/rtbs.json",
        '{"route":"/data_writing/{key}","method":"GET","status":200}',
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_url_keeps_user_and_host() -> None:
    assert redact(f"redis://default:{S}@cache:6379/0") == "redis://default:***@cache:6379/0"


def _record(msg: str, *args: object, exc: BaseException | None = None, **extra: object):
    record = logging.LogRecord("gateway.test", logging.ERROR, __file__, 1, msg, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    record.__dict__.update(extra)
    return record


def _raise_with_secret() -> BaseException:
    try:
        raise RuntimeError(f"upstream said no to http://api.example/calls.json?api_key={S}")
    except RuntimeError as exc:
        return exc


def test_json_formatter_masks_message_extras_nested_values_and_traceback() -> None:
    from gateway.observe.logs import JsonFormatter

    record = _record(
        "forwarding %s",
        f"key={S}",
        exc=_raise_with_secret(),
        fields={"api_key": S, "ok": "fine"},
        url=f"http://u:{S}@host/x",
    )
    line = JsonFormatter().format(record)
    assert S not in line
    payload = json.loads(line)
    assert payload["level"] == "error"
    assert payload["fields"]["ok"] == "fine"
    assert "RuntimeError" in payload["exc"]
    assert "Traceback" in payload["exc"]


def test_text_formatter_masks_and_keeps_extras_on_the_first_line() -> None:
    from gateway.observe.logs import TextFormatter

    line = TextFormatter().format(
        _record("boom %s", f"api_key={S}", exc=_raise_with_secret(), route="/rtbs.json")
    )
    assert S not in line
    first = line.splitlines()[0]
    assert "ERROR" in first
    assert "gateway.test: boom api_key=***" in first
    assert "route=/rtbs.json" in first
    assert "Traceback" in line


def test_request_id_of_the_request_in_flight_is_added(capture_logs) -> None:
    buf = capture_logs("json", "info")
    token = current_request.set(RequestContext("req-123"))
    try:
        logging.getLogger("gateway.shield").warning("redis slow")
    finally:
        current_request.reset(token)
    logging.getLogger("gateway.shield").warning("outside")
    first, second = (json.loads(line) for line in buf.getvalue().splitlines())
    assert first["request_id"] == "req-123"
    assert "request_id" not in second


def test_library_loggers_share_the_handler_and_mask(capture_logs) -> None:
    buf = capture_logs("json", "debug")
    url = f"http://127.0.0.1:9/calls.json?api_key={S}"
    logging.getLogger("httpx").info('HTTP Request: GET %s "HTTP/1.1 200 OK"', url)
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("aiohttp.client").debug("connecting to %s", url)
    logging.getLogger("redis.connection").debug("connect redis://:%s@h:1", S)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 4
    assert {json.loads(line)["logger"] for line in lines} == {
        "httpx",
        "uvicorn.error",
        "aiohttp.client",
        "redis.connection",
    }
    assert S not in buf.getvalue()


def test_httpx_request_lines_are_quiet_unless_debugging(capture_logs) -> None:
    buf = capture_logs("json", "info")
    logging.getLogger("httpx").info("HTTP Request: GET http://h/x?api_key=%s", S)
    logging.getLogger("uvicorn.access").info("GET /x?api_key=%s", S)
    assert buf.getvalue() == ""


def test_text_format_is_readable(capture_logs) -> None:
    buf = capture_logs("text", "info")
    logging.getLogger("gateway").info("started", extra={"version": "1.2.3"})
    line = buf.getvalue().strip()
    assert not line.startswith("{")
    assert "INFO" in line
    assert "gateway: started version=1.2.3" in line


def test_httpx2_request_lines_are_quiet_unless_debugging_and_masked(capture_logs) -> None:
    # The Core API client and the CLI speak httpx2, which logs under its own names.
    quiet = capture_logs("json", "info")
    logging.getLogger("httpx2").info("HTTP Request: GET http://h/x?api_key=%s", S)
    logging.getLogger("httpcore2.http11").debug("send_request_headers %s", S)
    assert quiet.getvalue() == ""
    loud = capture_logs("json", "debug")
    logging.getLogger("httpx2").info("HTTP Request: GET http://h/x?api_key=%s", S)
    assert json.loads(loud.getvalue())["logger"] == "httpx2"
    assert S not in loud.getvalue()
