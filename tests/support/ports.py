"""Free loopback ports and listening sockets for test servers."""

from __future__ import annotations

import socket


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A socket already bound and listening on a free port: no race with other tests."""
    # proto=IPPROTO_TCP: asyncio then sets TCP_NODELAY on accepted sockets; with proto 0
    # every answer written in two parts waited ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(4096)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for processes that must bind it themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
