"""Issue 20, row 1: clients that pipeline pings and never read the answers.

Before: each such socket kept a request blocked on its full send buffer, counted in flight,
and every request it had pipelined parsed and queued in the gateway, forever: a few
thousand of them took every ``GATEWAY_MAX_IN_FLIGHT`` slot (all other pings 503) and
gigabytes of memory. Now a request waiting on its peer holds no slot, a connection holds
at most a few dozen parsed requests, and one that does not read for
``GATEWAY_CLIENT_TIMEOUT_S`` is dropped with all it held.

Real gateway process, the sandbox as upstream, raw sockets with a tiny receive buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import pytest

from tests.conftest import RTB_KEY
from tests.faults.conftest import Record
from tests.faults.procs import gateway, metric, running, sandbox, until

pytestmark = pytest.mark.slow

NON_READERS = 12
SLOTS = 8  # fewer in-flight slots than non-readers: before the fix, every one was held
PIPELINED = 2_000_000  # bytes of pings per socket: far more answers than buffers hold
MB = 1024


def ping(i: int, port: int) -> bytes:
    target = f"/rtbs.json?key={RTB_KEY}&publisher_id=nr&caller_number=%2B18552{i:06d}"
    return f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n".encode()


async def non_reader(i: int, port: int, held: list[socket.socket]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    held.append(sock)
    one = ping(i, port)
    # Sends until the gateway stops reading (its parse queue is full); never reads.
    with contextlib.suppress(OSError):
        await loop.sock_sendall(sock, one * (PIPELINED // len(one)))


def dropped(sock: socket.socket) -> bool:
    """Has the gateway reset this connection? (Reading now: the test is over with it.)"""
    try:
        while sock.recv(1 << 20):
            pass
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    return True  # EOF


async def test_clients_that_never_read_hold_no_slot_and_are_dropped(figure: Record) -> None:
    sb = sandbox()
    gw = gateway(
        {
            "GATEWAY_RTB_UPSTREAM_URL": sb.url,
            "GATEWAY_MAX_IN_FLIGHT": str(SLOTS),
            "GATEWAY_CLIENT_TIMEOUT_S": "3",
            # Each answered ping is a ledger event the in-process ring keeps on purpose
            # (bounded by its own cap, ~0.8 kB each): a small ring, so RSS measures buffers.
            "GATEWAY_LEDGER_MEMORY_MAX_EVENTS": "500",
        }
    )
    held: list[socket.socket] = []
    async with running(sb, gw), httpx.AsyncClient(timeout=10) as client:
        probe = f"{gw.url}/rtbs.json?key={RTB_KEY}&publisher_id=p&caller_number=%2B18558485518"
        assert (await client.post(probe)).status_code == 200
        rss_before = gw.rss_kb()
        senders = [asyncio.create_task(non_reader(i, gw.port, held)) for i in range(NON_READERS)]
        try:
            # Every non-reader has a request blocked on its full buffers (counted by the
            # in-flight gauge, which covers the whole answer; the shedding count does not).
            async def blocked() -> bool:
                return await metric(gw.url, "gateway_http_requests_in_flight") > NON_READERS

            await until(blocked, within=30)
            rss_held = gw.rss_kb()
            statuses = [(await client.post(probe)).status_code for _ in range(20)]

            async def refused() -> bool:
                sent = 'reason="send_timeout"'
                return await metric(gw.url, "gateway_protect_refusals_total", sent) >= NON_READERS

            await until(refused, within=30)
            gone = [dropped(sock) for sock in held]
            in_flight = await metric(gw.url, "gateway_http_requests_in_flight")
            after = (await client.post(probe)).status_code
            rss_after = gw.rss_kb()
        finally:
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
            for sock in held:
                sock.close()
    figure(
        "RSS before / while held / after the drop (MB)",
        f"{rss_before / MB:.0f} / {rss_held / MB:.0f} / {rss_after / MB:.0f}",
    )
    figure("pings while held", str(sorted(set(statuses))))
    assert statuses == [200] * 20  # the blocked answers hold none of the 8 slots
    assert all(gone)  # each non-reader was dropped by the gateway
    assert in_flight == 1  # this /metrics request only
    assert after == 200
    # Parsed-ahead requests are bounded per connection: ~1 MB each at most, not ~50 MB.
    assert (rss_held - rss_before) / MB < NON_READERS * 2 + 20
    assert (rss_after - rss_before) / MB < NON_READERS * 2 + 20
