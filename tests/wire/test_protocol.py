"""The guarded HTTP protocol over raw sockets: head limits, slow clients, connection cap.

Stock uvicorn 0.54 + httptools 0.9, measured with the same clients: 20 MB of headers are
buffered and answered 200; a connection that sends nothing, or one header line a second,
is kept open indefinitely (keep-alive is only armed after a response). These tests show
the guarded protocol refuses each while other clients keep being served.
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.wire import protocol as connection
from tests.wire.guarded import serve_guarded

seen_bodies: list[bytes] = []
disconnects: list[str] = []


async def hello(request: Request) -> Response:
    return Response(b'{"ok":true}', media_type="application/json")


async def echo(request: Request) -> Response:
    from starlette.requests import ClientDisconnect

    try:
        body = await request.body()
    except ClientDisconnect:
        disconnects.append("body")
        raise
    seen_bodies.append(body)
    return Response(body)


APP = Starlette(
    routes=[Route("/", hello), Route("/healthz", hello), Route("/echo", echo, methods=["POST"])]
)


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, object], bool]:
    """(status, JSON body, closed afterwards) of one raw HTTP answer."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    status = int(head.split(b" ", 2)[1])
    length = int(
        next(
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
    )
    body = msgspec.json.decode(await asyncio.wait_for(reader.readexactly(length), 20))
    closed = await asyncio.wait_for(reader.read(1), 20) == b""
    return status, body, closed


async def test_idle_connection_is_closed_with_408() -> None:
    async with serve_guarded(APP) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        status, body, closed = await read_answer(reader)
        writer.close()
    assert (status, body["error"], closed) == (408, "request_timeout", True)
    assert refusals == ["request_timeout"]


async def test_slowloris_cannot_hold_a_connection_while_others_are_served() -> None:
    async with serve_guarded(APP) as (port, refusals), httpx.AsyncClient(timeout=10) as client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answer = asyncio.create_task(read_answer(reader))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        served = trickled = 0
        while not answer.done() and trickled < 400:  # a header line every 50 ms, <= 20 s
            try:
                writer.write(f"X-Slow-{trickled}: a\r\n".encode())
                await writer.drain()
            except ConnectionError:
                break
            trickled += 1
            if (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200:
                served += 1
            await asyncio.wait([answer], timeout=0.05)
        status, body, closed = await answer
        writer.close()
    assert (status, body["error"], closed) == (408, "request_timeout", True)
    assert trickled < 400  # cut off while the client was still trickling
    assert served >= 1
    assert refusals == ["request_timeout"]


async def test_slow_body_is_cut_off_and_the_app_sees_a_disconnect() -> None:
    disconnects.clear()
    seen_bodies.clear()
    async with serve_guarded(APP) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()
        status, body, closed = await read_answer(reader)
        writer.close()
    assert (status, body["error"], closed) == (408, "request_timeout", True)
    assert disconnects == ["body"]
    assert seen_bodies == []
    assert refusals == ["request_timeout"]


async def test_kept_alive_connection_outlives_the_request_timeout() -> None:
    async with serve_guarded(APP, request_timeout_s=0.2) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        writer.write(request)
        first = await asyncio.wait_for(reader.readuntil(b'{"ok":true}'), 20)
        await asyncio.sleep(0.6)  # three request timeouts of idling between requests
        writer.write(request)
        second = await asyncio.wait_for(reader.readuntil(b'{"ok":true}'), 20)
        writer.close()
    assert first.startswith(b"HTTP/1.1 200")
    assert second.startswith(b"HTTP/1.1 200")
    assert refusals == []


async def test_a_later_requests_timeout_counts_from_its_own_first_byte() -> None:
    # One timer per connection follows the deadline; the earlier request's must not fire.
    async with serve_guarded(APP, request_timeout_s=1.0) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await asyncio.wait_for(reader.readuntil(b'{"ok":true}'), 20)
        await asyncio.sleep(0.6)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        await asyncio.sleep(0.6)  # past the first request's deadline, within this one's
        writer.write(b"\r\n")
        second = await asyncio.wait_for(reader.readuntil(b'{"ok":true}'), 20)
        writer.close()
    assert first.startswith(b"HTTP/1.1 200")
    assert second.startswith(b"HTTP/1.1 200")
    assert refusals == []


async def test_oversized_headers_get_431() -> None:
    async with serve_guarded(APP, max_head_bytes=4096) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for _ in range(64):  # 64 KB offered; refused after the first 4 KB
            writer.write(b"X-Big: " + b"a" * 1024 + b"\r\n")
        await writer.drain()
        status, body, closed = await read_answer(reader)
        writer.close()
        async with httpx.AsyncClient() as client:
            after = await client.get(f"http://127.0.0.1:{port}/")
    assert (status, body["error"], closed) == (431, "headers_too_large", True)
    assert after.status_code == 200
    assert refusals == ["headers_too_large"]


async def test_oversized_request_line_gets_414() -> None:
    async with serve_guarded(APP, max_head_bytes=4096) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /?q=" + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        status, body, closed = await read_answer(reader)
        writer.close()
    assert (status, body["error"], closed) == (414, "uri_too_long", True)
    assert refusals == ["uri_too_long"]


async def test_malformed_http_gets_a_json_400() -> None:
    async with serve_guarded(APP) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\x00: y\r\n\r\n")
        status, body, closed = await read_answer(reader)
        writer.close()
    assert (status, body["error"], closed) == (400, "bad_request", True)
    assert refusals == ["bad_request"]


async def test_connections_past_the_cap_are_refused_at_once() -> None:
    from gateway.wire.protocol import PROBE_RESERVE

    async with serve_guarded(APP, max_connections=5, request_timeout_s=30) as (port, refusals):
        # The cap, then the probes' reserve (its own test below), then refusals.
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5 + PROBE_RESERVE)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        status, body, closed = await read_answer(reader)
        writer.close()
        for _, w in held[:1] + held[5:]:
            w.close()
        held = held[:5]
        for _ in range(200):  # the server notices the close; then a new client fits
            await asyncio.sleep(0.01)
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 20)
            w.close()
            if answer.startswith(b"HTTP/1.1 200"):
                break
        for _, w in held[1:]:
            w.close()
    assert (status, body["error"], closed) == (503, "overloaded", True)
    assert answer.startswith(b"HTTP/1.1 200")
    assert refusals.count("too_many_connections") >= 1


def _h2c(body: bytes, target: str = "/echo") -> bytes:
    """What ``curl --http2 -d BODY http://...`` sends: an HTTP/1.1 request asking to upgrade."""
    return (
        f"POST {target} HTTP/1.1\r\nHost: x\r\n"
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def read_raw(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of one raw HTTP answer on a connection that stays open."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return int(head.split(b" ", 2)[1]), await asyncio.wait_for(reader.readexactly(length), 20)


async def test_an_h2c_upgrade_with_a_body_is_read_as_http1_and_the_connection_stays_usable() -> (
    None
):
    """HTTP/1.1 lets a server ignore Upgrade (RFC 9110 7.8). llhttp stops at the head of
    an upgrade request, so the body was never read (the app saw an empty one) and every
    later request on the connection was lost as 'the other protocol'."""
    seen_bodies.clear()
    first = b'{"key":"k","caller_number":"+18558485518"}'
    second = b'{"n":2}'
    async with serve_guarded(APP) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_h2c(first) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # one segment
        answers = [await read_raw(reader), await read_raw(reader)]
        head = _h2c(second)
        writer.write(head[:-5])  # the body arrives in two pieces, in later reads
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(head[-5:])
        answers.append(await read_raw(reader))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answers.append(await read_raw(reader))
        writer.close()
    assert answers == [(200, first), (200, b'{"ok":true}'), (200, second), (200, b'{"ok":true}')]
    assert seen_bodies == [first, second]
    assert refusals == []


async def test_an_upgrade_with_a_chunked_body_is_refused_by_name() -> None:
    async with serve_guarded(APP) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n7\r\n{"n":1}\r\n0\r\n\r\n'
        )
        status, body, closed = await read_answer(reader)
        writer.close()
    assert (status, body["error"], closed) == (400, "bad_request", True)
    assert "chunked" in str(body["message"])
    assert refusals == ["bad_request"]


async def test_a_thousand_pipelined_requests_in_one_write_are_answered_in_order() -> None:
    """Parsing stops PIPELINE_MAX requests ahead of the answers; the rest waits as bytes
    and is parsed as answers go out, bodies split across parse pieces included."""
    seen_bodies.clear()
    requests = []
    for i in range(1000):
        body = f'{{"n":{i},"pad":"{"x" * (i % 7) * 3000}"}}'.encode()  # up to 18 kB
        requests.append(
            f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )
    async with serve_guarded(APP, request_timeout_s=30) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(requests))
        answers = [await read_raw(reader) for _ in requests]
        writer.close()
    assert [msgspec.json.decode(body)["n"] for _, body in answers] == list(range(1000))
    assert {status for status, _ in answers} == {200}
    assert len(seen_bodies) == 1000
    assert refusals == []


async def big(request: Request) -> Response:
    return Response(b"x" * 8_000_000, media_type="application/octet-stream")


async def test_a_client_that_stops_reading_is_dropped_after_the_timeout() -> None:
    """8 MB answered to a socket that reads nothing: the buffers fill, the transport
    pauses writing, and request_timeout_s later the connection is aborted."""
    app = Starlette(routes=[Route("/big", big), Route("/", hello)])
    async with serve_guarded(app, request_timeout_s=0.5) as (port, refusals):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        async with httpx.AsyncClient(timeout=10) as client:
            while "send_timeout" not in refusals:
                assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
                await asyncio.sleep(0.05)
        sock.setblocking(False)
        received, reset = 0, False
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            reset = True
        except BlockingIOError:
            pass
        sock.close()
    assert reset
    assert received < 8_000_000
    assert refusals == ["send_timeout"]


async def test_health_probes_are_answered_at_the_connection_cap() -> None:
    """Past the cap a small reserve serves /healthz and /readyz only, one request each,
    so idle connections held by someone else cannot fail the kubelet's probes."""
    from gateway.wire.protocol import PROBE_RESERVE

    async with serve_guarded(APP, max_connections=5, request_timeout_s=30) as (port, refusals):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        probes = []
        for _ in range(3):  # each probe's connection is closed after it: the reserve frees
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            probes.append(await read_answer(reader))
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        not_a_probe = await read_answer(reader)
        writer.close()
        reserve = [await asyncio.open_connection("127.0.0.1", port) for _ in range(PROBE_RESERVE)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        past_the_reserve = await read_answer(reader)
        writer.close()
        idle_in_reserve = await read_answer(reserve[0][0])  # no head within PROBE_HEAD_S
        for _, w in held + reserve:
            w.close()
    assert [(status, closed) for status, _, closed in probes] == [(200, True)] * 3
    assert (not_a_probe[0], not_a_probe[1]["error"], not_a_probe[2]) == (503, "overloaded", True)
    assert past_the_reserve[0] == 503
    assert (idle_in_reserve[0], idle_in_reserve[1]["error"]) == (408, "request_timeout")
    assert refusals.count("too_many_connections") == 2


async def test_curl_http2_ping_with_a_json_body_is_answered_by_the_gateway(
    sandbox_url: str,
) -> None:
    """The whole gateway behind the guarded protocol: the ping's fields are in its JSON
    body (before: 422, caller_number missing), and the connection serves the next one."""
    from gateway.app import create_app
    from gateway.config import Settings
    from tests.conftest import RTB_KEY

    app = create_app(Settings.from_env({}, rtb_upstream_url=sandbox_url))
    ping = msgspec.json.encode(
        {"key": RTB_KEY, "publisher_id": "p", "caller_number": "+18558485518"}
    )
    async with serve_guarded(app, lifespan="on", request_timeout_s=10) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_h2c(ping, "/rtbs.json"))
        first = await read_raw(reader)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        second = await read_raw(reader)
        writer.close()
    assert first[0] == 200
    assert msgspec.json.decode(first[1])["status"] == "reserved"
    assert second == (200, b'{"status":"ok"}')
    assert refusals == []


async def slow(request: Request) -> Response:
    n = request.query_params["n"]
    await asyncio.sleep(0.8 if n == "250" else 0)  # one answer longer than the timeout
    return Response(n.encode())


async def test_requests_waiting_behind_a_long_pipeline_do_not_time_out() -> None:
    """The request timeout is the client's to meet: bytes the gateway holds back while
    32 requests wait for answers are not late, however long the answers take."""
    app = Starlette(routes=[Route("/slow", slow)])
    requests = b"".join(
        f"GET /slow?n={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(1000)
    )
    async with serve_guarded(app, request_timeout_s=0.5) as (port, refusals):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(requests)  # one write of 40 kB: most of it waits unparsed
        answers = [await read_raw(reader) for _ in range(1000)]
        writer.close()
    assert answers == [(200, str(i).encode()) for i in range(1000)]
    assert refusals == []


def test_configure_makes_a_class_per_call_and_leaves_the_shared_one_alone() -> None:
    before = dict(vars(connection.GuardedHttpToolsProtocol))
    small = connection.configure(max_head_bytes=1024, request_timeout_s=1, max_connections=2)
    large = connection.configure(max_head_bytes=65536, request_timeout_s=9, max_connections=9)
    assert (small.max_head_bytes, large.max_head_bytes) == (1024, 65536)
    assert (small.max_connections, large.max_connections) == (2, 9)
    assert issubclass(small, connection.GuardedHttpToolsProtocol)
    assert dict(vars(connection.GuardedHttpToolsProtocol)) == before
