"""The ping path's own Redis client: Lua scripts over one RESP connection per node.

Why not redis-py here: the shield's two scripts per forwarded ping cost ~120 µs of CPU
each through redis-py (pool lock, retry wrapper, decorators, script wrapper, stream
reader and writer); this client costs a fraction of that (docs/pages/performance.md).
redis-py stays the client for everything else (pub/sub, rate limits, the lookup cache,
the cluster slot map): this module only runs scripts.

- **One connection per Redis node, auto-pipelined.** Callers never wait for earlier
  replies: commands issued in one event-loop iteration are written together, in one
  ``write`` at the start of the next (ioredis' ``enableAutoPipelining``, rueidis), and
  replies come back in order and are matched to their callers first in, first out, so
  no pool, no lock and no checkout per command. Replies are parsed by ``hiredis``. A
  write to a loopback socket costs more CPU than anything else this client does (the
  kernel delivers the segment and wakes Redis inside the ``write``); one per iteration
  instead of one per command took ~10-15% off a forwarded ping in
  ``loadtests/pathbench.py`` (notes/shield.md; an earlier try at this, on a busy box
  under ``wrk``, had measured it worse, note12).
- **Every call has a deadline** (``timeout_s``, ``GATEWAY_REDIS_TIMEOUT_MS``), kept by
  one watchdog timer per connection rather than one timer per call (replies arrive in
  order, so the oldest outstanding command is always the first to be late). A late
  caller gets its error and goes on; its reply, when it comes, is matched in order and
  dropped, so one slow reply fails only the calls that waited too long, not everything
  on the connection. A connection whose oldest command has had no reply for
  ``max(1 s, 4 deadlines)`` is dropped (a dead peer) and the next call reconnects.
  Connecting has the same deadline.
- **Scripts by digest**: ``EVALSHA``, and ``EVAL`` once on ``NOSCRIPT`` (a restarted or
  failed-over Redis), which caches the script again.
- **Cluster**: the slot comes from the first key's hash tag, the node from redis-py's
  slot map (one table lookup per call); ``MOVED`` retries once on the named node and
  refreshes the map in the background; ``ASK`` sends ``ASKING`` and the command to the
  named node once.

Connection parameters (host, port or unix path, TLS context, credentials, database,
client name) are read from redis-py's connection objects, so ``GATEWAY_REDIS_URL`` has
exactly one parser. Failures raise :class:`LinkError`; the seam (``gateway/wire/redis.py``)
translates them with every other Redis failure.

Library versions: reads redis-py's connection objects and its cluster slot map
(``nodes_manager``), not public API, and calls hiredis' ``Reader`` and ``pack_command``.
``tests/wire/test_redis.py`` covers redis-py 8.1.0 (the floor and the lock) to 8.2.0
(``.ci/latest``, 2026-12-04) and hiredis 3.2.0 (floor) to 3.5.0 (lock, newest);
pyproject.toml allows redis-py ``>=8.1,<8.3`` and hiredis ``>=3.2,<4``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import Any

import hiredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.crc import key_slot

Arg = bytes | str | int | float

_SLOTS = 16384
REFRESH_MIN_S = 1.0
_ASKING = hiredis.pack_command((b"ASKING",))


class LinkError(Exception):
    """A script call got no usable answer (refused, dropped, late, or an error reply)."""


class LinkTimeout(LinkError, TimeoutError):
    """No reply within the deadline."""


class Script:
    """A Lua script known by its SHA1, as ``EVALSHA`` wants it."""

    __slots__ = ("lua", "sha")

    def __init__(self, lua: str) -> None:
        self.lua = lua.encode()
        self.sha = hashlib.sha1(self.lua, usedforsecurity=False).hexdigest().encode()


class _Connection(asyncio.Protocol):
    """One socket: pipelined writes, replies matched in order, one watchdog timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._loop = loop
        self._timeout_s = timeout_s
        self._reader = hiredis.Reader()
        self._pending: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        # Commands issued in this turn of the loop, written together early in the next.
        self._out: list[bytes] = []
        self._grace = False
        # A connection whose oldest command is this old without a reply is given up.
        self._dead_s = max(1.0, 4 * timeout_s)
        self.closed = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance here.
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        pending = self._pending
        reader.feed(data)
        while True:
            reply = reader.gets()
            if reply is False:
                return
            if not pending:  # a reply nobody asked for: the stream is not ours to trust
                self._fail("unexpected reply")
                return
            fut = pending.popleft()[0]
            if not fut.done():  # its caller may have been cancelled meanwhile
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("connection lost")

    # calls

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        fut = self._loop.create_future()
        if self.closed:
            fut.set_exception(LinkError("connection closed"))
            return fut
        pending = self._pending
        if not pending and self._watchdog is None:
            self._watchdog = self._loop.call_at(self._loop.time() + self._timeout_s, self._watch)
        pending.append((fut, self._loop.time()))
        out = self._out
        out.append(packed)
        if len(out) == 1:
            self._loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        """Write what this iteration's callers sent (``_fail`` empties it first)."""
        out, self._out = self._out, []
        if out and not self.closed:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))  # type: ignore[union-attr]

    def _watch(self) -> None:
        """Fail the calls whose deadline has passed; drop a connection nothing answers."""
        self._watchdog = None
        pending = self._pending
        if not pending or self.closed:
            return
        now = self._loop.time()
        oldest_sent = pending[0][1]
        if now - oldest_sent >= self._dead_s:
            # The oldest command has had no reply for many deadlines: the peer is gone
            # (a half-open connection, a blackhole). Start over on a new connection.
            self._fail("no reply", timed_out=True)
            return
        deadline = self._timeout_s
        overdue = []
        next_due = oldest_sent + self._dead_s
        for fut, sent in pending:
            if sent + deadline > now:
                next_due = min(next_due, sent + deadline)
                break
            if not fut.done():
                overdue.append(fut)
        if overdue and not self._grace:
            # After a stall of the event loop, uvloop runs due timers before it reads
            # sockets: replies that came in time may be waiting unread. Look again after
            # one more turn of the loop (1 ms) before calling them late.
            self._grace = True
            self._watchdog = self._loop.call_at(now + 0.001, self._watch)
            return
        self._grace = False
        for fut in overdue:
            # Only these callers give up; their replies, when they come, are matched
            # in order and dropped, and the connection goes on serving the others.
            fut.set_exception(LinkTimeout("timeout"))
        self._watchdog = self._loop.call_at(next_due, self._watch)

    def _fail(self, reason: str, *, timed_out: bool = False) -> None:
        """Close for good: every outstanding call fails (each with its own exception)."""
        if self.closed:
            return
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        pending, self._pending = self._pending, deque()
        self._out = []
        kind = LinkTimeout if timed_out else LinkError
        for fut, _ in pending:
            if not fut.done():
                fut.set_exception(kind(reason))
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        self._fail("closed")


class _NodeLink:
    """The connection to one Redis node, (re)opened on demand, one connect at a time."""

    def __init__(self, params: Any, timeout_s: float) -> None:
        self._params = params  # a redis-py connection object: only its settings are read
        self._timeout_s = timeout_s
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None

    def call(self, packed: bytes) -> asyncio.Future[Any] | None:
        """The reply's future, or ``None`` when there is no open connection yet."""
        conn = self._conn
        if conn is None or conn.closed:
            return None
        return conn.send(packed)

    async def call_slow(self, packed: bytes) -> Any:
        conn = await self.connected()
        return await conn.send(packed)

    async def connected(self) -> _Connection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        task = self._connecting
        if task is None:
            task = self._connecting = asyncio.ensure_future(self._open())
            task.add_done_callback(self._opened)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Each waiter raises its own instance: a shared one would grow its traceback.
            raise LinkError(f"connect failed: {type(exc).__name__}") from None

    def _opened(self, task: asyncio.Task[_Connection]) -> None:
        self._connecting = None
        if not task.cancelled() and task.exception() is None:
            self._conn = task.result()

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        p = self._params
        proto = _Connection(loop, self._timeout_s)
        async with asyncio.timeout(self._timeout_s):
            if isinstance(p, UnixDomainSocketConnection):
                await loop.create_unix_connection(lambda: proto, p.path)
            else:
                ssl = p.ssl_context.get() if isinstance(p, SSLConnection) else None
                await loop.create_connection(
                    lambda: proto, p.host, p.port, ssl=ssl, server_hostname=p.host if ssl else None
                )
            try:
                for command in await _handshake(p):
                    reply = await proto.send(hiredis.pack_command(command))
                    if isinstance(reply, hiredis.ReplyError):
                        raise LinkError(f"{command[0]!s} refused")
            except BaseException:
                proto.close()
                raise
        return proto

    def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


async def _handshake(p: Any) -> list[tuple[Arg, ...]]:
    """AUTH, CLIENT SETNAME and SELECT as redis-py would send them on connect."""
    commands: list[tuple[Arg, ...]] = []
    provider = getattr(p, "credential_provider", None)
    if provider is not None:
        creds = tuple(await provider.get_credentials_async())
        commands.append(("AUTH", *creds))
    elif p.password:
        commands.append(("AUTH", p.username, p.password) if p.username else ("AUTH", p.password))
    if p.client_name:
        commands.append(("CLIENT", "SETNAME", p.client_name))
    if not isinstance(getattr(p, "db", 0), int) or p.db:
        commands.append(("SELECT", p.db))
    return commands


class ScriptClient:
    """Runs :class:`Script` s on the node that owns their keys' slot."""

    def __init__(self, client: Any, *, timeout_s: float) -> None:
        self._client = client  # redis-py's: its parsed URL and, in a cluster, its slot map
        self._timeout_s = timeout_s
        self._cluster = isinstance(client, RedisCluster)
        self._links: dict[str, _NodeLink] = {}
        self._by_slot: list[_NodeLink | None] = [None] * _SLOTS if self._cluster else []
        self._single: _NodeLink | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._refreshed_at = float("-inf")
        if not self._cluster:
            pool = client.connection_pool
            self._single = _NodeLink(
                pool.connection_class(**pool.connection_kwargs), self._timeout_s
            )

    def run(
        self, script: Script, keys: Sequence[str], args: Sequence[Arg]
    ) -> Coroutine[Any, Any, Any]:
        """The script's reply, to await; :class:`LinkError` when there is none to be had.

        Not a coroutine function: the command is queued on its node's open connection
        by the call itself, so commands leave in the order of the calls, and before
        anything the process writes after the call (the shield writes an answer only
        after its store is queued). Without an open connection it is sent once the
        awaited connect succeeds.
        """
        packed = hiredis.pack_command((b"EVALSHA", script.sha, len(keys), *keys, *args))
        link = self._single
        if link is None:
            try:
                link = self._link_for(keys[0])
            except LinkError as exc:
                return raising(exc)
        return self._reply(link, link.call(packed), packed, script, keys, args)

    async def _reply(
        self,
        link: _NodeLink,
        fut: asyncio.Future[Any] | None,
        packed: bytes,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Arg],
    ) -> Any:
        try:
            reply = await (fut if fut is not None else link.call_slow(packed))
        except LinkError:
            if self._cluster:
                self._refresh()  # a dead node is only replaced in a fresh slot map
            raise
        if type(reply) is hiredis.ReplyError:
            reply = await self._recover(reply, link, script, keys, args)
        return reply

    async def load(self, *scripts: Script) -> None:
        """``SCRIPT LOAD`` on every known node, so the first burst meets no ``NOSCRIPT``."""
        links = [self._single] if self._single is not None else self._primaries()
        for link in links:
            for script in scripts:
                reply = await link.call_slow(hiredis.pack_command((b"SCRIPT", b"LOAD", script.lua)))
                if isinstance(reply, hiredis.ReplyError):
                    raise LinkError("SCRIPT LOAD refused")

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(BaseException):
                await self._refreshing
        for link in [*self._links.values(), *([self._single] if self._single else [])]:
            link.close()
        self._links.clear()

    async def _recover(
        self,
        error: hiredis.ReplyError,
        link: _NodeLink,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Arg],
    ) -> Any:
        message = str(error)
        asking = False
        if message.startswith(("MOVED ", "ASK ")):
            # "MOVED <slot> <host>:<port>": that node owns the slot now (or, for ASK,
            # for this one command while the slot migrates).
            asking = message.startswith("ASK ")
            address = message.split(" ", 2)[2]
            link = self._node(address)
            if not asking:
                self._refresh()
            reply = await self._send(link, script.sha, keys, args, asking)
            if type(reply) is not hiredis.ReplyError:
                return reply
            message = str(reply)
        if message.startswith("NOSCRIPT"):
            reply = await self._send(link, script.lua, keys, args, asking, command=b"EVAL")
            if type(reply) is not hiredis.ReplyError:
                return reply
            message = str(reply)
        raise LinkError("error reply: " + message.split(" ", 1)[0][:32])

    async def _send(
        self,
        link: _NodeLink,
        body: bytes,
        keys: Sequence[str],
        args: Sequence[Arg],
        asking: bool,
        command: bytes = b"EVALSHA",
    ) -> Any:
        packed = hiredis.pack_command((command, body, len(keys), *keys, *args))
        if not asking:
            return await link.call_slow(packed)
        # ASKING and the command must reach the node back to back on one connection:
        # written one right after the other, nothing can come between them.
        conn = await link.connected()
        asked = conn.send(_ASKING)
        reply = conn.send(packed)
        await asked
        return await reply

    # -- cluster topology ------------------------------------------------------------------

    def _link_for(self, key: str) -> _NodeLink:
        slot = key_slot(key.encode())
        link = self._by_slot[slot]
        if link is None:
            try:
                node = self._client.nodes_manager.get_node_from_slot(slot)
            except Exception:  # no slot map yet (the cluster was down at start-up)
                self._refresh()
                raise LinkError("no slot map") from None
            link = self._by_slot[slot] = self._node(node.name)
        return link

    def _node(self, address: str) -> _NodeLink:
        link = self._links.get(address)
        if link is None:
            nodes = self._client.nodes_manager
            node = nodes.nodes_cache.get(address)
            if node is None:  # named by MOVED/ASK before the slot map knows it
                host, _, port = address.rpartition(":")
                node = ClusterNode(host, int(port), **nodes.connection_kwargs)
            params = node.connection_class(**node.connection_kwargs)
            link = self._links[address] = _NodeLink(params, self._timeout_s)
        return link

    def _primaries(self) -> list[_NodeLink]:
        nodes = self._client.nodes_manager.nodes_cache.values()
        return [self._node(n.name) for n in nodes if n.server_type == "primary"]

    def _refresh(self) -> None:
        """Re-read the slot map (redis-py's ``CLUSTER SLOTS``) in the background: one at a
        time, at most one a second."""
        loop = asyncio.get_running_loop()
        if self._refreshing is not None or loop.time() < self._refreshed_at + REFRESH_MIN_S:
            return
        self._refreshed_at = loop.time()

        async def refresh() -> None:
            try:
                async with asyncio.timeout(max(self._timeout_s * 20, 1.0)):
                    await self._client.initialize()  # a no-op once it has a slot map
                    await self._client.nodes_manager.initialize()
            finally:
                self._by_slot = [None] * _SLOTS
                self._refreshing = None

        self._refreshing = asyncio.ensure_future(refresh())
        self._refreshing.add_done_callback(lambda t: t.cancelled() or t.exception())


async def raising(exc: BaseException) -> Any:
    """An awaitable that raises ``exc``: for a failure found before anything was queued."""
    raise exc
