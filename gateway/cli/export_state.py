"""``gateway calls export``: what one export is (options), what it has done so far (the
state file that ``--resume`` carries on from) and how it ends (result or ExportError).

The state file (``FILE.state.json``) records the pages and bytes written after each page
and a digest of the key, never the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from gateway.coreapi.reports import parse_instant

STATE_VERSION = 1


class ExportError(Exception):
    """The export stopped; the message says why (never with the key)."""


@dataclass
class ExportOptions:
    since: str
    until: str
    api_key: str
    base_url: str
    company_id: str | None = None
    fmt: str = "ndjson"
    output: Path | None = None
    v2: bool = False
    concurrency: int = 4
    resume: bool = False
    state_path: Path | None = None
    quiet: bool = False
    timeout_s: float = 30.0

    @property
    def path(self) -> str:
        return "/api/v2/calls.json" if self.v2 else "/calls.json"

    def identity(self) -> dict[str, Any]:
        """What a state file must match to be resumed."""
        digest = hashlib.sha256(self.api_key.encode()).hexdigest()[:16]
        return {
            "base_url": self.base_url,
            "path": self.path,
            "since": self.since,
            "until": self.until,
            "company_id": self.company_id,
            "format": self.fmt,
            "key_sha256_16": digest,
        }


@dataclass
class ExportState:
    identity: dict[str, Any]
    pages_total: int | None = None
    pages_written: int = 0
    records: int = 0
    offset: int = 0
    columns: list[str] | None = None
    next_query: str | None = None  # the query of a rel="next" link: our page template
    complete: bool = False
    version: int = STATE_VERSION


@dataclass
class ExportResult:
    pages: int
    records: int
    output_bytes: int


def normalise_instant(name: str, value: str) -> str:
    parsed = parse_instant(value)
    if parsed is None:
        raise ExportError(f"--{name}: not a date (YYYY-MM-DD) or RFC 3339 date-time: {value!r}")
    return parsed.isoformat()


def load_state(opts: ExportOptions) -> ExportState | None:
    path = opts.state_path
    if not opts.resume or path is None or not path.exists():
        return None
    try:
        state = msgspec.json.decode(path.read_bytes(), type=ExportState)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise ExportError(f"{path}: not a state file this version can resume") from None
    if state.identity != opts.identity():
        raise ExportError(f"{path}: it belongs to a different export (range, source or key)")
    return state
