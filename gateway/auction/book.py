"""The auctions in force, and their reloading without dropping a ping.

``AuctionBook.table`` maps an auction key to its :class:`~gateway.auction.file.Auction`;
the ping path does one ``dict.get`` on it. A reload builds a whole new table and swaps
the reference, so a ping already in an auction finishes with the auction it started
with, and no ping ever sees half a file.

Reloads happen on SIGHUP and when the file changes (a ``stat`` every
``GATEWAY_AUCTIONS_RELOAD_S`` seconds: mtime, size and inode, so a ConfigMap's symlink
swap counts too). An invalid new file keeps the auctions in force and logs why: the
error names auction, destination and field, never a key. Each destination's upstream
gets one :class:`~gateway.ping.forwarder.Forwarder` (its own pool and breaker), made when
first needed and kept until shutdown; the default upstream reuses the gateway's own
client, so an auction destination and a plain ping to the same Retreaver share a pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping

from gateway.ping.forwarder import Forwarder

from .file import Auction, AuctionsFileError, Destination, read_auctions

log = logging.getLogger("gateway.auction")

MAX_UPSTREAMS = 64

ClientFactory = Callable[[str], Forwarder]


class AuctionBook:
    def __init__(
        self,
        path: str | None,
        *,
        env: Mapping[str, str],
        default_upstream: str,
        default_client: Forwarder,
        make_client: ClientFactory,
        reload_s: float = 2.0,
        on_reload: Callable[[str], None] | None = None,
    ) -> None:
        self.path = path
        self._env = env
        self._default_upstream = default_upstream
        self._clients: dict[str, Forwarder] = {default_upstream.rstrip("/"): default_client}
        self._own: list[Forwarder] = []
        self._make_client = make_client
        self._reload_s = reload_s
        self._on_reload = on_reload
        self._signature: tuple[int, int, int] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._sighup = False
        self._tasks: set[asyncio.Task[bool]] = set()
        self._reloading = asyncio.Lock()
        self.table: dict[str, Auction] = {}
        if path is not None:
            # At build time an invalid file is fatal (the CLI has already said why).
            self._signature = self._stat()
            auctions = read_auctions(path, env, default_upstream)
            self._add_clients(auctions)  # started by start(), before the first ping
            self.table = {auction.key.reveal(): auction for auction in auctions}

    @property
    def auctions(self) -> tuple[Auction, ...]:
        return tuple(self.table.values())

    def client_for(self, destination: Destination) -> Forwarder:
        client = self._clients.get(destination.upstream)
        if client is None:  # cannot happen: clients are made before their table is in force
            raise RuntimeError(f"no client for destination {destination.name!r}")
        return client

    async def start(self) -> None:
        for client in self._own:
            await client.start()
        if self.path is None:
            return
        if self._reload_s > 0:
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            # Only the main thread of a process may own signal handlers; elsewhere
            # (tests serving in a thread) the file poll still reloads.
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hangup)
            self._sighup = True

    async def close(self) -> None:
        if self._sighup:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for client in self._own:
            await client.close()

    async def reload(self) -> bool:
        """Read the file again; True when the new auctions are in force."""
        if self.path is None:
            return False
        async with self._reloading:
            self._signature = self._stat()
            try:
                auctions = read_auctions(self.path, self._env, self._default_upstream)
                self._check_upstreams(auctions)
            except AuctionsFileError as exc:
                log.warning(
                    "auctions file not reloaded, keeping the auctions in force: %s",
                    exc.message,
                    extra={"auctions_file": self.path},
                )
                self._count("invalid")
                return False
            # New upstreams' clients are ready before any ping can be routed to them.
            for client in self._add_clients(auctions):
                await client.start()
            self.table = {auction.key.reveal(): auction for auction in auctions}
            self._count("ok")
            log.info(
                "auctions reloaded",
                extra={"auctions": len(auctions), "auctions_file": self.path},
            )
            return True

    # -- internals -----------------------------------------------------------------------

    def _add_clients(self, auctions: tuple[Auction, ...]) -> list[Forwarder]:
        """A client for each upstream not seen before (to be started by the caller)."""
        self._check_upstreams(auctions)
        made = []
        for auction in auctions:
            for destination in auction.destinations:
                if destination.upstream not in self._clients:
                    client = self._make_client(destination.upstream)
                    self._clients[destination.upstream] = client
                    self._own.append(client)
                    made.append(client)
        return made

    def _check_upstreams(self, auctions: tuple[Auction, ...]) -> None:
        urls = set(self._clients)
        for auction in auctions:
            urls.update(d.upstream for d in auction.destinations)
        if len(urls) > MAX_UPSTREAMS:
            raise AuctionsFileError(
                f"at most {MAX_UPSTREAMS} distinct destination upstreams per process"
            )

    def _stat(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _hangup(self) -> None:
        log.info("SIGHUP: reloading the auctions file")
        task = asyncio.get_running_loop().create_task(self.reload())
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._reload_s)
            if self._stat() != self._signature:
                try:
                    await self.reload()
                except Exception:  # a reload bug must not end the polling
                    log.exception("auctions file reload failed")

    def _count(self, result: str) -> None:
        if self._on_reload is not None:
            self._on_reload(result)
