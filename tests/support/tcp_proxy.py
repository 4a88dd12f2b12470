"""A TCP proxy on 127.0.0.1 that can stop forwarding: a network blackhole on demand.

While blackholed it still accepts connections but moves no bytes in either direction;
bytes already read are held, not dropped, and flow again on :meth:`restore`, as TCP
retransmission would deliver them after a partition heals. So a client sees what a
silently dropped route looks like (connects succeed, requests never get an answer), not
a refused or reset connection.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._replying = asyncio.Event()  # the target-to-client direction alone
        self._replying.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def blackhole(self) -> None:
        self._flowing.clear()

    def restore(self) -> None:
        self._flowing.set()

    def hold_replies(self) -> None:
        """Keep what the target sends (held, not dropped); requests still reach it."""
        self._replying.clear()

    def release_replies(self) -> None:
        self._replying.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        writers = [writer]
        self._writers.add(writer)
        try:
            await self._flowing.wait()
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            writers.append(up_writer)
            self._writers.add(up_writer)
            await asyncio.gather(
                self._pump(reader, up_writer),
                self._pump(up_reader, writer, self._replying),
                return_exceptions=True,
            )
        finally:
            for w in writers:
                self._writers.discard(w)
                w.close()
            self._tasks.discard(task)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: asyncio.Event | None = None,
    ) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()  # read just before the blackhole: hold it
                if direction is not None:
                    await direction.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()
