"""``/stats`` for the whole replica: each worker's ring, shared through a directory.

With ``--workers N`` a request reaches one worker, and that worker's rings hold only its
own traffic. ``/metrics`` solves this with prometheus-client's multiprocess files; the
rolling stats do the same in miniature: once a second, off the request path, every
worker writes its last minute of one-second slots (:meth:`RollingStats.export`, a few
KB) to ``stats-<pid>.json`` in the multiprocess directory, atomically (a temporary file
renamed over the old one), and whichever worker answers ``/stats`` adds the other live
workers' files to its own rings. Another worker's numbers are thus at most about a second
old; the answering worker's are live.

A file counts while its worker lives: the supervisor removes it when it reaps the worker
(``gateway/wire/server.py``), and a file not rewritten for ``STALE_S`` (a worker killed without
its supervisor noticing, or a reused pid) is ignored.
"""

from __future__ import annotations

import contextlib
import glob
import os
import time
from typing import Any

import msgspec

from gateway.observe.stats import RollingStats

PREFIX = "stats-"
STALE_S = 10.0

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def path_for(directory: str, pid: int) -> str:
    return os.path.join(directory, f"{PREFIX}{pid}.json")


def encode(stats: RollingStats) -> bytes:
    """This worker's export, ready to write (on the event loop: it reads the rings)."""
    return _encoder.encode(stats.export())


def write(directory: str, data: bytes, pid: int | None = None) -> None:
    """Replace this worker's file atomically (readers never see half a file)."""
    pid = os.getpid() if pid is None else pid
    final = path_for(directory, pid)
    temporary = f"{final}.tmp"
    with open(temporary, "wb") as out:
        out.write(data)
    os.replace(temporary, final)


def remove(directory: str, pid: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path_for(directory, pid))


def read_peers(directory: str, own_pid: int | None = None) -> list[dict[str, Any]]:
    """Every other live worker's latest export."""
    own_pid = os.getpid() if own_pid is None else own_pid
    now = time.time()
    peers = []
    for path in glob.glob(os.path.join(directory, f"{PREFIX}*.json")):
        name = os.path.basename(path)[len(PREFIX) : -len(".json")]
        if not name.isdigit() or int(name) == own_pid:
            continue
        try:
            if now - os.path.getmtime(path) > STALE_S or not _alive(int(name)):
                continue
            with open(path, "rb") as f:
                export = _decoder.decode(f.read())
        except (OSError, msgspec.DecodeError):
            continue  # it went away between the listing and the read
        if isinstance(export, dict):
            peers.append(export)
    return peers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
