"""``gateway calls export``: writing pages in order (NDJSON or CSV) and the progress line.

After each page the output is flushed to disk and the state file saved, so ``--resume``
can cut the output back to the last whole page. CSV columns are those of the first call
(nested values as JSON); NDJSON keeps every field.
"""

from __future__ import annotations

import csv
import io
import os
import time
from typing import IO, Any

import msgspec

from gateway.cli.export_fetch import Page
from gateway.cli.export_state import ExportOptions, ExportState

_json = msgspec.json.Encoder()


class Progress:
    """A bar on a terminal, a line per 10 % elsewhere, nothing when quiet."""

    def __init__(self, stream: IO[str] | None, quiet: bool) -> None:
        self.stream = None if quiet else stream
        self.tty = bool(self.stream is not None and self.stream.isatty())
        self.started = time.monotonic()
        self._last_decile = -1

    def update(self, pages: int, total: int | None, records: int) -> None:
        if self.stream is None:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        if total:
            share = min(pages / total, 1.0)
            width = 30
            filled = int(share * width)
            bar = "#" * filled + "-" * (width - filled)
            line = f"calls export [{bar}] {pages}/{total} pages, {records} calls"
            decile = int(share * 10)
        else:
            line = f"calls export {pages} pages, {records} calls"
            decile = pages
        line += f", {pages / elapsed:.1f} pages/s"
        if self.tty:
            self.stream.write("\r" + line)
            self.stream.flush()
        elif decile != self._last_decile:
            self._last_decile = decile
            self.stream.write(line + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()


class Writer:
    """Appends pages to the output in order and keeps the state file in step with it."""

    def __init__(self, opts: ExportOptions, state: ExportState, out: IO[bytes]) -> None:
        self.opts = opts
        self.state = state
        self.out = out

    def write_page(self, page: Page) -> None:
        data = self._encode(page.records)
        self.out.write(data)
        self.out.flush()
        if self.opts.state_path is not None:
            os.fsync(self.out.fileno())
        self.state.pages_written += 1
        self.state.records += len(page.records)
        self.state.offset += len(data)
        self.save()

    def _encode(self, records: list[dict[str, Any]]) -> bytes:
        if self.opts.fmt == "ndjson":
            return b"".join(_json.encode(r) + b"\n" for r in records)
        buffer = io.StringIO()
        if self.state.columns is None:
            if not records:
                return b""
            self.state.columns = list(records[0])
            csv.writer(buffer, lineterminator="\n").writerow(self.state.columns)
        writer = csv.DictWriter(
            buffer, self.state.columns, extrasaction="ignore", lineterminator="\n"
        )
        for record in records:
            writer.writerow({k: _cell(v) for k, v in record.items()})
        return buffer.getvalue().encode()

    def save(self) -> None:
        path = self.opts.state_path
        if path is None:
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(self.state)))
        os.replace(tmp, path)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return _json.encode(value).decode()
    return value
