"""A misbehaving HTTP upstream made of raw sockets: resets, hangs up, or counts.

uvicorn cannot reset a connection on purpose, so failure modes below the HTTP layer get
this tiny asyncio server instead. It counts the requests it saw, so a test can assert a
POST was sent once and never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from typing import Literal

Mode = Literal["reset", "close", "hang"]


class RawUpstream:
    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.requests = 0
        self.got_request = asyncio.Event()
        self._hold = asyncio.Event()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        self.requests += 1
        self.got_request.set()
        if self.mode == "hang":
            await self._hold.wait()
        sock = writer.get_extra_info("socket")
        if self.mode == "reset" and sock is not None:
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    def release(self) -> None:
        self._hold.set()


@contextlib.asynccontextmanager
async def raw_upstream(mode: Mode) -> AsyncIterator[tuple[str, RawUpstream]]:
    upstream = RawUpstream(mode)
    server = await asyncio.start_server(upstream._handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", upstream
    finally:
        upstream.release()
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
