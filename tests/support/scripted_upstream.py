"""A keep-alive HTTP/1.1 upstream whose every answer a test scripts, on raw sockets.

The sandbox answers like Retreaver; this answers however a test needs Retreaver to
misbehave: an 8 MB body (declared, or chunked with no length), a header value outside
latin-1, a 6 kB ``Link`` on every lookup, a 429 for one key only. It is a few dozen
lines of asyncio so it can serve tens of thousands of requests in a test's seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    chunked: bool = False  # send the body chunked, without a Content-Length
    unfinished: bool = False  # never finish the answer: one byte short, or no last chunk


@dataclass
class Seen:
    method: str
    target: str


Script = Callable[[Seen], Reply]
CHUNK = 64 * 1024


class ScriptedUpstream:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.seen: list[Seen] = []
        self.connections = 0  # accepted so far
        self._closed = asyncio.Event()
        self.url = ""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, OSError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                seen = Seen(method, target)
                self.seen.append(seen)
                await self._reply(writer, self.script(seen))
        writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        out = [f"HTTP/1.1 {reply.status} X\r\n".encode()]
        for name, value in reply.headers:
            out.append(name.encode() + b": " + value + b"\r\n")
        if reply.chunked:
            out.append(b"Transfer-Encoding: chunked\r\n\r\n")
            writer.write(b"".join(out))
            view = memoryview(reply.body)
            for start in range(0, len(view), CHUNK):
                piece = view[start : start + CHUNK]
                writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                await writer.drain()
            if not reply.unfinished:
                writer.write(b"0\r\n\r\n")
        else:
            length = len(reply.body) + int(reply.unfinished)
            out.append(b"Content-Length: %d\r\n\r\n" % length)
            writer.write(b"".join(out) + reply.body)
        await writer.drain()
        if reply.unfinished:
            await self._closed.wait()  # the client must hang up; nothing more comes


@contextlib.asynccontextmanager
async def scripted_upstream(script: Script) -> AsyncIterator[ScriptedUpstream]:
    upstream = ScriptedUpstream(script)
    server = await asyncio.start_server(upstream._handle, "127.0.0.1", 0, limit=1 << 20)
    upstream.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield upstream
    finally:
        upstream._closed.set()
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
