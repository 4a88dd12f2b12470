"""Forwarder: every publisher request that goes upstream, to its Retreaver endpoint.

Pings and confirmations go to the RTB endpoint, call data writes to the data-writing one
(the class was called ``RtbClient`` until it took on data writing too).

One pool of keep-alive connections per origin and process, on the lean HTTP/1.1 client of
:mod:`gateway.wire.http1`. The client was chosen by measurement: on the 2-core
reference box httpx's default transport forwarded ~370 pings/s per core against ~2,600
for aiohttp (loadtests/client_bench.py), and aiohttp in turn spent ~35% of the
gateway's CPU per forwarded ping, which the lean client cuts to a fraction
(docs/pages/performance.md; dated figures in git history). A reservation's request head
is built once.

Error mapping happens here, at the boundary, so callers only ever see
:class:`~gateway.wire.answer.UpstreamAnswer` or :class:`~gateway.errors.GatewayError`::

    TimeoutError (deadline spent)               -> 504 upstream_timeout
    HttpFailure (connect, TLS, reset, closed,
      malformed or broken response)             -> 502 bad_gateway
    an answer over ``max_answer_bytes``         -> 502 bad_gateway (outcome ``too_large``;
                                                   the connection is dropped, not pooled)

A ``Content-Type`` the gateway could not send on (not latin-1, CR/LF/NUL) is replaced
here, before the shield stores the answer: stored, it would fail every repeat.

A POST is never retried once any byte of it may have been sent: a retried ping could
reserve twice. The deadline is the caller's, absolute on the loop clock, so time already
spent (parsing, shield) is charged against the same budget.

Call data writing (``/data_writing`` on ``GATEWAY_DATA_WRITING_URL``) has its own pool
and the same error mapping, under its own ``upstream`` metric label and without the RTB
breaker: a slow retreaverdata.com must not stop pings.

An optional :class:`~gateway.protect.breaker.CircuitBreaker` wraps every ping send: it
refuses at once (503) while the upstream is failing or when the pool is full, instead of
queueing, and learns from each outcome (a cancelled send teaches it nothing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from gateway.errors import BadGateway, NotReady, UpstreamTimeout
from gateway.protect.breaker import CircuitBreaker
from gateway.wire.answer import AnswerTooLarge, UpstreamAnswer, content_type_for
from gateway.wire.failures import too_large
from gateway.wire.http1 import (
    HttpFailure,
    Origin,
    Pool,
    content_length,
    json_head,
    request_bytes,
)

DATA_WRITING = "data_writing"

Observer = Callable[[str, float], None]

DEFAULT_MAX_ANSWER_BYTES = 1024 * 1024


class Forwarder:
    """Pooled forwarding to ``{base_url}/rtbs.json`` and ``{base_url}/rtbs/{uuid}.json``,
    and of call data writes to ``{data_writing_url}/data_writing``."""

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
        self._rtb = Origin(base_url, user_agent)
        self._data = Origin(data_writing_url or base_url, user_agent)
        self._observe_data = observe_data_writing
        self.breaker = breaker
        # Built once: a reservation is this head, its length and the body, in one write.
        self._reserve_head = json_head(self._rtb, "POST", "/rtbs.json")
        self._observe = observe
        self._max_connections = max_connections
        self._max_answer_bytes = max_answer_bytes
        self._pools: tuple[Pool, Pool] | None = None

    async def start(self) -> None:
        rtb = Pool(self._rtb, max_connections=self._max_connections)
        self._pools = (rtb, Pool(self._data, max_connections=self._max_connections))

    async def close(self) -> None:
        if self._pools is not None:
            for pool in self._pools:
                await pool.close()
            self._pools = None

    @property
    def connections_in_use(self) -> int:
        """Connections currently lent out by the pools (for the occupancy gauge)."""
        if self._pools is None:
            return 0
        return sum(pool.in_use for pool in self._pools)

    async def reserve(self, body: bytes, deadline: float) -> UpstreamAnswer:
        return await self._send(self._reserve_head + content_length(body) + body, deadline)

    async def confirm(
        self, uuid: str, method: str, body: bytes | None, deadline: float
    ) -> UpstreamAnswer:
        data = request_bytes(self._rtb, method, f"/rtbs/{uuid}.json", body)
        return await self._send(data, deadline)

    async def write_data(
        self, method: str, path_and_query: str, body: bytes | None, deadline: float
    ) -> UpstreamAnswer:
        """Call data writing, sent once: ``path_and_query`` was built from validated fields."""
        data = request_bytes(self._data, method, path_and_query, body)
        return await self._send(data, deadline, upstream=DATA_WRITING)

    async def _send(self, data: bytes, deadline: float, *, upstream: str = "rtb") -> UpstreamAnswer:
        pools = self._pools
        if pools is None:
            raise NotReady()
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise UpstreamTimeout(upstream)
        if upstream == "rtb":
            pool, observe, breaker = pools[0], self._observe, self.breaker
        else:
            pool, observe, breaker = pools[1], self._observe_data, None
        probe = breaker.acquire() if breaker is not None else False
        verdict: bool | None = None  # upstream healthy? None: cancelled, no verdict
        started = time.perf_counter()
        outcome = "error"
        try:
            async with asyncio.timeout(remaining):
                raw = await pool.send(data, self._max_answer_bytes)
            status = raw.status
            outcome = "ok" if status < 500 else "5xx"
            verdict = status < 500
            return UpstreamAnswer(status, raw.body, content_type_for(raw.content_type, raw.body))
        except AnswerTooLarge as exc:
            outcome = "too_large"
            verdict = False
            detail = too_large(exc, "GATEWAY_RTB_MAX_ANSWER_BYTES")
            raise BadGateway(upstream, detail) from None
        except TimeoutError:
            outcome = "timeout"
            verdict = False
            raise UpstreamTimeout(upstream) from None
        except HttpFailure as exc:
            outcome = "error"
            verdict = False
            raise BadGateway(upstream, exc.words) from None
        finally:
            if breaker is not None:
                breaker.release(verdict, probe)
            if observe is not None:
                observe(outcome, time.perf_counter() - started)
