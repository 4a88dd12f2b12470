"""The Redis seam and its ping-path script client, against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio

from gateway.wire.redis import Breaker, RedisSeam, RedisUnavailable
from gateway.wire.resp import Script
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.tcp_proxy import TcpProxy

ECHO = Script("return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}")
FAIL = Script("return redis.error_reply('BOOM nope')")


def seam(url: str, timeout_s: float = 1.0) -> RedisSeam:
    return RedisSeam(url, timeout_s=timeout_s, max_connections=4)


async def test_a_script_runs_and_replies_come_back_to_their_callers(
    redis_server: RedisServer,
) -> None:
    s = seam(redis_server.url)
    try:
        replies = await asyncio.gather(
            *(s.run("echo", ECHO, (f"k{i}",), (f"v{i}", i)) for i in range(200))
        )
        assert replies == [[f"k{i}".encode(), f"v{i}".encode(), i + 1] for i in range(200)]
        probe = redis.asyncio.from_url(redis_server.url)
        names = [c["name"] for c in await probe.client_list()]
        await probe.aclose()
        assert names.count("rtb-gateway") == 1  # one connection, named as redis-py names its
    finally:
        await s.close()


async def test_concurrent_calls_share_one_connection(redis_server: RedisServer) -> None:
    """Auto-pipelining: 50 calls in flight at once need no pool of 50 connections."""
    s = seam(redis_server.url)
    probe = redis.asyncio.from_url(redis_server.url)
    try:
        await s.run("echo", ECHO, ("k",), ("v", 1))  # connected
        before = (await probe.info("stats"))["total_connections_received"]
        await asyncio.gather(*(s.run("echo", ECHO, ("k",), ("v", i)) for i in range(50)))
        after = (await probe.info("stats"))["total_connections_received"]
        assert after == before  # no new connection for 50 concurrent calls
    finally:
        await probe.aclose()
        await s.close()


async def test_noscript_is_answered_by_eval(redis_server: RedisServer) -> None:
    s = seam(redis_server.url)
    probe = redis.asyncio.from_url(redis_server.url)
    try:
        assert (await s.run("echo", ECHO, ("k",), ("v", 1)))[2] == 2
        await probe.script_flush()
        assert (await s.run("echo", ECHO, ("k",), ("v", 2)))[2] == 3
        assert (await probe.script_exists(ECHO.sha.decode())) == [True]  # EVAL cached it
    finally:
        await probe.aclose()
        await s.close()


async def test_an_error_reply_is_the_one_gateway_error(redis_server: RedisServer) -> None:
    s = seam(redis_server.url)
    try:
        with pytest.raises(RedisUnavailable) as raised:
            await s.run("fail", FAIL, ("k",), ())
        assert raised.value.operation == "fail"
        # The connection is still good for the next call.
        assert (await s.run("echo", ECHO, ("k",), ("v", 1)))[2] == 2
    finally:
        await s.close()


async def test_refused_connection_fails_at_once() -> None:
    s = seam(f"redis://127.0.0.1:{free_port()}/0")
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RedisUnavailable):
            await s.run("echo", ECHO, ("k",), ("v", 1))
        assert loop.time() - started < 0.5
    finally:
        await s.close()


async def test_a_blackholed_redis_times_out_then_reconnects(redis_server: RedisServer) -> None:
    async with TcpProxy(redis_server.port) as proxy:
        s = seam(proxy.url, timeout_s=0.1)
        try:
            assert (await s.run("echo", ECHO, ("k",), ("v", 1)))[2] == 2
            proxy.blackhole()
            loop = asyncio.get_running_loop()
            started = loop.time()
            results = await asyncio.gather(
                *(s.run("echo", ECHO, ("k",), ("v", i)) for i in range(5)),
                return_exceptions=True,
            )
            waited = loop.time() - started
            assert all(isinstance(r, RedisUnavailable) for r in results)
            assert {r.reason for r in results if isinstance(r, RedisUnavailable)} == {"LinkTimeout"}
            assert 0.09 <= waited < 0.5
            proxy.restore()
            assert (await s.run("echo", ECHO, ("k",), ("v", 7)))[2] == 8
        finally:
            await s.close()


async def test_a_restarted_redis_is_reconnected_and_scripts_reloaded(
    redis_server: RedisServer,
) -> None:
    s = seam(redis_server.url)
    try:
        assert (await s.run("echo", ECHO, ("k",), ("v", 1)))[2] == 2
        redis_server.kill()
        with pytest.raises(RedisUnavailable):
            await s.run("echo", ECHO, ("k",), ("v", 1))
        redis_server.start()
        assert (await s.run("echo", ECHO, ("k",), ("v", 4)))[2] == 5
    finally:
        await s.close()


async def test_a_cancelled_caller_does_not_shift_the_replies(redis_server: RedisServer) -> None:
    s = seam(redis_server.url)
    try:
        await s.run("echo", ECHO, ("k",), ("v", 0))
        doomed = asyncio.create_task(s.run("echo", ECHO, ("a",), ("x", 1)))
        kept = asyncio.create_task(s.run("echo", ECHO, ("b",), ("y", 2)))
        await asyncio.sleep(0)
        doomed.cancel()
        assert await kept == [b"b", b"y", 3]
        assert await s.run("echo", ECHO, ("c",), ("z", 3)) == [b"c", b"z", 4]
    finally:
        await s.close()


async def test_password_and_database_come_from_the_url(redis_server: RedisServer) -> None:
    probe = redis.asyncio.from_url(redis_server.url)
    await probe.config_set("requirepass", "s3cret")
    s = seam(f"redis://:s3cret@127.0.0.1:{redis_server.port}/3")
    try:
        await s.run("set", Script("return redis.call('SET', KEYS[1], ARGV[1])"), ("x",), ("1",))
        authed = redis.asyncio.from_url(f"redis://:s3cret@127.0.0.1:{redis_server.port}/3")
        assert await authed.get("x") == b"1"
        await authed.config_set("requirepass", "")
        await authed.aclose()
    finally:
        await probe.aclose()
        await s.close()


async def test_a_wrong_password_is_a_failure_not_a_hang(redis_server: RedisServer) -> None:
    probe = redis.asyncio.from_url(redis_server.url)
    await probe.config_set("requirepass", "s3cret")
    s = seam(f"redis://:wrong@127.0.0.1:{redis_server.port}/0")
    try:
        with pytest.raises(RedisUnavailable) as raised:
            await s.run("echo", ECHO, ("k",), ("v", 1))
        assert "wrong" not in str(raised.value)
    finally:
        unlocked = redis.asyncio.from_url(f"redis://:s3cret@127.0.0.1:{redis_server.port}/0")
        await unlocked.config_set("requirepass", "")
        await unlocked.aclose()
        await probe.aclose()
        await s.close()


async def test_redis_py_calls_share_the_deadline_and_error(redis_server: RedisServer) -> None:
    s = seam(redis_server.url, timeout_s=0.1)
    try:
        assert await s.call("ping", s.client.ping()) is True
        redis_server.pause()
        with pytest.raises(RedisUnavailable):
            await s.call("ping", s.client.ping())
    finally:
        redis_server.resume()
        await s.close()


def test_the_breaker_opens_after_failures_and_probes_once() -> None:
    now = [0.0]
    b = Breaker(failures=2, open_s=1.0, clock=lambda: now[0])
    assert b.allow()
    assert not b.failure()
    assert b.failure()  # opened
    assert not b.allow()
    now[0] = 1.0
    assert b.allow()  # the probe
    assert not b.allow()  # only one
    b.success()
    assert b.closed
    assert b.allow()


BUSY = Script(
    "local t = redis.call('TIME') local start = t[1] * 1e6 + t[2] "
    "repeat local n = redis.call('TIME') until n[1] * 1e6 + n[2] - start > tonumber(ARGV[1]) "
    "return 1"
)


async def test_a_late_reply_fails_only_its_caller_and_keeps_the_connection(
    redis_server: RedisServer,
) -> None:
    s = seam(redis_server.url, timeout_s=0.3)
    probe = redis.asyncio.from_url(redis_server.url)
    try:
        await s.run("echo", ECHO, ("k",), ("v", 0))
        before = (await probe.info("stats"))["total_connections_received"]
        with pytest.raises(RedisUnavailable) as raised:
            await s.run("busy", BUSY, ("k",), (450_000,))  # Redis busy for 0.45 s
        assert raised.value.reason == "LinkTimeout"
        # Sent while Redis is still busy; answered within its own deadline, on the same
        # connection, after the late reply has been matched and dropped.
        assert await s.run("echo", ECHO, ("k",), ("v", 1)) == [b"k", b"v", 2]
        assert (await probe.info("stats"))["total_connections_received"] == before
    finally:
        await probe.aclose()
        await s.close()
