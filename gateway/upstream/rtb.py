"""RtbClient: forwards validated pings and confirmations to Retreaver's RTB endpoint.

One pooled aiohttp session per process. The client was chosen by measurement: on the
2-core reference box httpx's default transport forwarded ~370 pings/s per core against
~2,600 for aiohttp (DESIGN.md, loadtests/client_bench.py), because httpcore rescans its
whole pool on every request.

Error mapping happens here, at the boundary, so callers only ever see
:class:`~gateway.upstream.answer.UpstreamAnswer` or :class:`~gateway.errors.GatewayError`::

    asyncio.TimeoutError (deadline spent)       -> 504 upstream_timeout
    aiohttp.ClientError / OSError (connect,
      reset, broken response)                   -> 502 bad_gateway
    an answer over ``max_answer_bytes``         -> 502 bad_gateway (outcome ``too_large``;
                                                   the connection is dropped, not pooled)

A ``Content-Type`` the gateway could not send on (not latin-1, CR/LF/NUL) is replaced
here, before the shield stores the answer: stored, it would fail every repeat.

A POST is never retried once any byte of it may have been sent: a retried ping could
reserve twice. The deadline is the caller's, absolute on the loop clock, so time already
spent (parsing, shield) is charged against the same budget.

Call data writing (``/data_writing`` on ``GATEWAY_DATA_WRITING_URL``) rides the same
pooled session and the same error mapping, under its own ``upstream`` metric label and
without the RTB breaker: a slow retreaverdata.com must not stop pings.

An optional :class:`~gateway.protect.breaker.CircuitBreaker` wraps every ping send: it
refuses at once (503) while the upstream is failing or when the pool is full, instead of
queueing, and learns from each outcome (a cancelled send teaches it nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
from yarl import URL

from gateway.errors import BadGateway, NotReady, UpstreamTimeout
from gateway.protect.breaker import CircuitBreaker
from gateway.upstream.answer import AnswerTooLarge, UpstreamAnswer, content_type_for, read_bounded
from gateway.upstream.failures import describe, too_large

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
_ACCEPT_JSON = {"Accept": "application/json"}
DATA_WRITING = "data_writing"

Observer = Callable[[str, float], None]

DEFAULT_MAX_ANSWER_BYTES = 1024 * 1024


class RtbClient:
    """Pooled forwarding to ``{base_url}/rtbs.json`` and ``{base_url}/rtbs/{uuid}.json``."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 512,
        observe: Observer | None = None,
        user_agent: str = "rtb-gateway",
        breaker: CircuitBreaker | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        data_writing_url: str | None = None,
        observe_data_writing: Observer | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._data_base = (data_writing_url or base_url).rstrip("/")
        self._observe_data = observe_data_writing
        self.breaker = breaker
        # Parsed once: aiohttp would otherwise parse the URL string on every ping.
        self._reserve_url = URL(self._base + "/rtbs.json", encoded=True)
        self._observe = observe
        self._max_connections = max_connections
        self._max_answer_bytes = max_answer_bytes
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=self._max_connections,
            ttl_dns_cache=60,
            keepalive_timeout=30,
            enable_cleanup_closed=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self._user_agent},
            auto_decompress=True,
            skip_auto_headers=("Accept-Encoding",),
            raise_for_status=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            # The deadline is ours (asyncio.timeout in _send); aiohttp's own default
            # (300 s total, 30 s connect) would only arm a second timer per request.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=None),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def connections_in_use(self) -> int:
        """Connections currently lent out by the pool (for the occupancy gauge)."""
        if self._session is None:
            return 0
        connector = self._session.connector
        acquired = getattr(connector, "_acquired", ())
        return len(acquired)

    async def reserve(self, body: bytes, deadline: float) -> UpstreamAnswer:
        return await self._send("POST", self._reserve_url, body, deadline)

    async def confirm(self, uuid: str, method: str, body: bytes, deadline: float) -> UpstreamAnswer:
        return await self._send(method, f"{self._base}/rtbs/{uuid}.json", body, deadline)

    async def write_data(
        self, method: str, path_and_query: str, body: bytes | None, deadline: float
    ) -> UpstreamAnswer:
        """Call data writing, sent once: ``path_and_query`` was built from validated fields."""
        url = URL(self._data_base + path_and_query, encoded=True)
        return await self._send(
            method, url, body, deadline, upstream=DATA_WRITING, observe=self._observe_data
        )

    async def _send(
        self,
        method: str,
        url: str | URL,
        body: bytes | None,
        deadline: float,
        *,
        upstream: str = "rtb",
        observe: Observer | None = None,
    ) -> UpstreamAnswer:
        session = self._session
        if session is None:
            raise NotReady()
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise UpstreamTimeout(upstream)
        is_rtb = upstream == "rtb"
        if is_rtb:
            observe = self._observe
        breaker = self.breaker if is_rtb else None
        headers = _JSON_HEADERS if body is not None else _ACCEPT_JSON
        probe = breaker.acquire() if breaker is not None else False
        verdict: bool | None = None  # upstream healthy? None: cancelled, no verdict
        started = time.perf_counter()
        outcome = "error"
        try:
            async with asyncio.timeout(remaining):
                async with session.request(
                    method, url, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    payload = await read_bounded(resp, self._max_answer_bytes)
                    content_type = content_type_for(resp.headers.get("Content-Type"), payload)
            outcome = "ok" if resp.status < 500 else "5xx"
            verdict = resp.status < 500
            return UpstreamAnswer(resp.status, payload, content_type)
        except AnswerTooLarge as exc:
            outcome = "too_large"
            verdict = False
            detail = too_large(exc, "GATEWAY_RTB_MAX_ANSWER_BYTES")
            raise BadGateway(upstream, detail) from None
        except TimeoutError:
            outcome = "timeout"
            verdict = False
            raise UpstreamTimeout(upstream) from None
        except (aiohttp.ClientError, OSError) as exc:
            outcome = "error"
            verdict = False
            raise BadGateway(upstream, describe(exc)) from None
        finally:
            if breaker is not None:
                breaker.release(verdict, probe)
            if observe is not None:
                observe(outcome, time.perf_counter() - started)
