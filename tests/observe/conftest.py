"""Fixtures for observability tests: log capture through the gateway's own formatter."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import pytest

from gateway.observe.logs import LIBRARY_LOGGERS, configure, set_destination

CaptureLogs = Callable[..., io.StringIO]


@pytest.fixture
def capture_logs() -> Iterator[CaptureLogs]:
    """``capture_logs(fmt, level)`` routes every logger (and the access log) to a buffer,
    as ``serve`` does."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {
        name: (lg.handlers[:], lg.level, lg.propagate, lg.disabled)
        for name in LIBRARY_LOGGERS
        for lg in [logging.getLogger(name)]
    }

    saved_destination = set_destination(None)
    set_destination(saved_destination)

    def capture(fmt: str = "json", level: str = "debug") -> io.StringIO:
        buf = io.StringIO()
        configure(fmt, level, stream=buf)
        return buf

    yield capture
    set_destination(saved_destination)
    root.handlers[:], level = saved_root
    root.setLevel(level)
    for name, (handlers, lvl, propagate, disabled) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers[:] = handlers
        lg.setLevel(lvl)
        lg.propagate = propagate
        lg.disabled = disabled
