"""Logging: one JSON object per line (or readable text), with secrets masked.

Every logger (ours, uvicorn's, httpx's, redis') goes through one handler and one
formatter, so the masking below applies to every line, tracebacks included. Masking is a
last line of defence: code should not log secrets in the first place.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import msgspec

_SECRET_PATTERNS = (
    # api_key=..., key=..., password=... in query strings and form bodies
    (re.compile(r"(?i)((?:api_key|key|password|token|secret)=)[^&\s\"'<>]+"), r"\1***"),
    # "api_key": "...", "key": "..." in JSON
    (re.compile(r'(?i)("(?:api_key|key|password|token|secret)"\s*:\s*")[^"]*(")'), r"\1***\2"),
    # userinfo in URLs: scheme://user:pass@host
    (re.compile(r"(?i)([a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@/\s]+(@)"), r"\1***\2"),
    # Authorization headers
    (
        re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:bearer |basic )?[^\s'\",]+"),
        r"\1***",
    ),
)

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message",
    "asctime",
    "taskName",
}

_encoder = msgspec.json.Encoder()


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and value is not None:
                payload[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return _encoder.encode(payload).decode("utf-8", "replace")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD and v is not None
        )
        line = super().format(record)
        return redact(f"{line} {extras}" if extras else line)


def configure(fmt: str = "json", level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in (
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
        "httpx",
        "httpcore",
        "redis",
        "aiohttp",
    ):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # uvicorn's access log would duplicate ours and print raw paths with query strings.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every URL (query strings included) at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
