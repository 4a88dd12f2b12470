"""A real three-node Redis Cluster on loopback ports, for ``redis+cluster://`` tests."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ports(count: int) -> list[int]:
    """Ports whose cluster-bus twin (port + 10000) is free too."""
    rng = random.SystemRandom()
    ports: list[int] = []
    while len(ports) < count:
        port = rng.randrange(20000, 45000)
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


def _send(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(command)
        return sock.recv(65536)


class RedisClusterServers:
    def __init__(self, nodes: int = 3) -> None:
        self.ports = _cluster_ports(nodes)
        self.dir = Path(tempfile.mkdtemp(prefix="rtbgw-cluster-"))
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        for port in self.ports:
            node_dir = self.dir / str(port)
            node_dir.mkdir()
            self.procs.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(node_dir),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            self._wait(lambda p=port: _send(p, b"PING\r\n").startswith(b"+PONG"))
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        for port in self.ports:
            self._wait(lambda p=port: b"cluster_state:ok" in _send(p, b"CLUSTER INFO\r\n"))

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def _wait(check: object, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():  # type: ignore[operator]
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis cluster did not become ready")
