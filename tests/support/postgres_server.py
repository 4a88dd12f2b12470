"""A real PostgreSQL (Debian's ``postgresql``) on a free port, which tests may kill and restart.

``initdb`` into a temporary folder, then ``postgres`` itself as the child process (no
pg_ctl), so a test can SIGKILL it as a crash would, or stop it and start it again on the
same port and data. PostgreSQL refuses to run as root: as root the folder is given to
``nobody`` and the processes run as that user. It listens on 127.0.0.1 only, trusts
local connections, and trades durability for speed (fsync off: a commit still reaches
the OS before it is acknowledged, so it survives a killed server, which is what the tests
do; only a crashed machine would lose it).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.ports import free_port


def postgres_bin() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` (or the PATH's initdb's folder)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if found:
        return Path(found[-1])
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(os.path.realpath(initdb)).parent


class PostgresServer:
    """One PostgreSQL cluster; ``url(db)`` stays the same across restarts."""

    def __init__(self, port: int | None = None) -> None:
        self.bin = postgres_bin()
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="rtbgw-pg-"))
        self.data = self.dir / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            self._as = {"user": "nobody", "group": "nogroup"}
            shutil.chown(self.dir, "nobody", "nogroup")
        self.dir.chmod(0o700)
        subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.dir,
            **self._as,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        log_file = open(self.dir / "postgres.log", "ab")  # noqa: SIM115 - closed below
        self.proc = subprocess.Popen(
            [
                str(self.bin / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.dir),
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            cwd=self.dir,
            **self._as,
        )
        log_file.close()  # the child holds its own copy
        self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: {self.log()}")
            if self.ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not start: {self.log()}")

    def ready(self) -> bool:
        result = subprocess.run(
            [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return result.returncode == 0

    def accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def log(self) -> str:
        try:
            return (self.dir / "postgres.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-AtX",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            capture_output=True,
            check=True,
            text=True,
        )
        return result.stdout.strip()

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def kill(self) -> None:
        """SIGKILL the postmaster: the way a crashed or OOM-killed PostgreSQL disappears.

        Its backends notice the postmaster is gone and exit; the next start recovers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._wait_port_free()

    def stop(self) -> None:
        """A fast shutdown (SIGINT): clients are disconnected, data is kept."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)
        self._wait_port_free()

    def _wait_port_free(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.accepts() and time.monotonic() < deadline:
            time.sleep(0.05)
        # Orphaned backends of a killed postmaster hold shared memory until they exit.
        pid_file = self.data / "postmaster.pid"
        while pid_file.exists() and time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
