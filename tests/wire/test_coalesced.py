"""What the guarded protocol's transport wrapper writes, and when.

``_Coalesced`` keeps a connection's writes until the next loop iteration and sends them
as one write; these pin down the rules that keep that safe: order, and nothing left
behind by a close, a half-close or a large answer. The transport below only records
(the behaviour over real sockets is in test_one_write.py and test_connection.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.wire.protocol import FLUSH_AT, _Coalesced


class Recording:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.events.append("write")

    def write_eof(self) -> None:
        self.events.append("eof")

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0  # the kernel took everything

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


async def next_iteration() -> None:
    await asyncio.sleep(0)


async def test_writes_of_one_iteration_leave_together_at_the_next() -> None:
    raw = Recording()
    out = _Coalesced(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    out.write(b"HTTP/1.1 200 OK\r\n\r\n")
    out.write(b"")
    out.write(b"body")
    assert raw.writes == []
    await next_iteration()
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    out.write(b"next")
    await next_iteration()
    assert raw.writes[-1] == b"next"


async def test_close_and_half_close_send_what_is_kept_first() -> None:
    raw = Recording()
    out = _Coalesced(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    out.write(b"answer")
    out.write_eof()
    assert raw.events == ["write", "eof"]
    out.write(b"late")
    out.close()
    assert raw.events == ["write", "eof", "write", "close"]
    assert raw.writes == [b"answer", b"late"]
    await next_iteration()  # the flush already scheduled finds nothing left to send
    assert raw.writes == [b"answer", b"late"]


async def test_a_large_answer_goes_out_at_once_in_order_and_is_not_copied() -> None:
    """What is pending goes first; the large body is handed on as the very object, so a
    cached answer queued for many slow clients is held once, not once per client."""
    raw = Recording()
    out = _Coalesced(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    body = b"x" * FLUSH_AT
    out.write(b"head")
    out.write(body)
    out.write(b"next")
    await next_iteration()
    assert raw.writes == [b"head", body, b"next"]
    assert raw.writes[1] is body


async def test_nothing_is_written_to_a_closing_or_aborted_transport() -> None:
    raw = Recording()
    out = _Coalesced(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    out.write(b"lost")
    out.abort()
    await next_iteration()
    assert raw.writes == []
    gone = Recording()
    out = _Coalesced(gone, asyncio.get_running_loop())  # type: ignore[arg-type]
    out.write(b"too late")
    gone.closing = True  # the peer went away before the loop came round
    await next_iteration()
    assert gone.writes == []
    assert out.get_extra_info("peername") == ("127.0.0.1", 1)
