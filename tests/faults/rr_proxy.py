"""A tiny round-robin HTTP load balancer, as a Kubernetes Service + readiness would be.

Every ``interval_s`` it asks each backend's ``/readyz``; requests go round-robin to the
backends that last answered 200. It never retries (a retried ping could reserve twice),
so any request a draining replica drops shows up as a failure of the rolling restart.
Connections to backends are pooled and kept alive, as a real balancer's are.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class RoundRobin:
    def __init__(self, backends: list[str], interval_s: float = 0.1) -> None:
        self.backends = list(backends)
        self.healthy: list[str] = []
        self.interval_s = interval_s
        self.forwarded: dict[str, int] = {}
        self._next = 0
        self._session: aiohttp.ClientSession | None = None

    async def check(self) -> None:
        assert self._session is not None
        healthy = []
        for url in list(self.backends):
            try:
                async with self._session.get(
                    url + "/readyz", timeout=aiohttp.ClientTimeout(total=0.5)
                ) as resp:
                    if resp.status == 200:
                        healthy.append(url)
            except (aiohttp.ClientError, TimeoutError, OSError):
                continue
        self.healthy = healthy

    async def _checking(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval_s)

    async def handle(self, request: web.Request) -> web.Response:
        assert self._session is not None
        if not self.healthy:
            return web.json_response({"error": "no healthy backend"}, status=599)
        backend = self.healthy[self._next % len(self.healthy)]
        self._next += 1
        self.forwarded[backend] = self.forwarded.get(backend, 0) + 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = await request.read()
        try:
            async with self._session.request(
                request.method,
                backend + request.path_qs,
                data=body,
                headers=headers,
                allow_redirects=False,
            ) as resp:
                payload = await resp.read()
                return web.Response(
                    body=payload,
                    status=resp.status,
                    content_type=resp.content_type,
                    headers={"X-Backend": backend},
                )
        except (aiohttp.ClientError, OSError) as exc:
            return web.json_response({"error": f"backend failed: {exc!r}"}, status=598)

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await self.check()
        checker = asyncio.create_task(self._checking())
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checker
            await runner.cleanup()
            await self._session.close()
