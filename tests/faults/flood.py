"""Floods over raw keep-alive sockets: tens of thousands of requests in seconds.

aiohttp's client would cost the test more CPU than the gateway spends answering; this
writes prepared request bytes and reads back only the status and the declared body,
reconnecting when the gateway closes a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Callable


async def flood(
    port: int, request: Callable[[int], bytes], count: int, connections: int = 32
) -> Counter[int]:
    """Send ``request(i)`` for i in range(count); the statuses seen (0: no answer)."""
    numbers = itertools.count()
    statuses: Counter[int] = Counter()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (i := next(numbers)) < count:
                try:
                    writer.write(request(i))
                    status, close = await _answer(reader)
                except (ConnectionError, asyncio.IncompleteReadError):
                    status, close = 0, True
                statuses[status] += 1
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return statuses


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close
