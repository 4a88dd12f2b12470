"""CoreApiClient: the gateway's only way to the Core API, polite by construction.

One pooled aiohttp session per process (the same client as the RTB path, so one HTTP
stack to tune and trust). Politeness lives here rather than in the handlers so that no
caller can forget it:

- at most ``max_concurrency`` requests in flight to the Core API (v1 and v2 together),
  enforced by a semaphore around every attempt; time queued for it counts against the
  attempt's timeout;
- a GET answered 429 waits out ``Retry-After`` (seconds or an HTTP date; 1 s when
  absent) and is retried while the total wait stays within ``max_retry_wait_s``;
  otherwise the 429 goes back to the caller with a ``Retry-After``. The semaphore is not
  held while waiting. Writes are never retried: a retried POST could create twice.
- a 429 quiets the credentials that got it (a digest of the request's ``api_key`` /
  ``key`` and ``Authorization``), not the replica: until its ``Retry-After`` (capped at
  ``max_quiet_s``) has passed no request with those credentials is sent. Their lookups
  arriving meanwhile wait it out when it fits their retry budget, else get a 429 with
  ``Retry-After`` from the gateway itself; other clients' lookups go on within the
  concurrency cap. One company's throttled key must not silence every other company
  on the replica for the ten minutes its ``Retry-After`` may ask.

Errors are translated at this boundary, so callers see only an
:class:`~gateway.upstream.answer.UpstreamAnswer` or a :class:`~gateway.errors.GatewayError`::

    TimeoutError (queue + request over the timeout)   -> 504 upstream_timeout
    aiohttp.ClientError / OSError                     -> 502 bad_gateway
    an answer over ``max_answer_bytes``               -> 502 bad_gateway (outcome
                                                         ``too_large``, connection dropped)

Kept headers the gateway could not send on (not latin-1, CR/LF/NUL) are dropped here,
and such a ``Content-Type`` replaced, before the lookup cache stores the answer.

Messages never contain URLs: a Core API URL carries the client's ``api_key``. An
``Authorization`` value (caller lists' Bearer secret) is sent as the request's header and
nowhere else.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

import aiohttp
from yarl import URL

from gateway.errors import BadGateway, NotReady, UpstreamTimeout
from gateway.upstream.answer import (
    STATUS_OUTSIDE_RANGE,
    AnswerTooLarge,
    UpstreamAnswer,
    content_type_for,
    deliverable,
    read_bounded,
    valid_status,
)
from gateway.upstream.credentials import credentials_digest
from gateway.upstream.failures import describe, too_large

Observer = Callable[[str, float], None]


class Upstream(Enum):
    """Which base URL serves a route: the unversioned/v1 API, or v2 (v3, v4 too)."""

    V1 = "core_api"  # GATEWAY_CORE_API_URL
    V2 = "core_api_v2"  # GATEWAY_CORE_API_V2_URL


NAME = "core_api"
DEFAULT_RETRY_AFTER_S = 1.0
MAX_ATTEMPTS = 8
# Upstream headers that travel back to the client besides Content-Type.
KEPT_HEADERS = ("Link", "Retry-After")
DEFAULT_MAX_ANSWER_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_QUIET_S = 60.0
# Credentials quieted at once; past this the oldest quiet is forgotten (memory bound).
MAX_QUIET_CREDENTIALS = 10_000


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class CoreApiClient:
    """GETs (with 429 handling) and writes to the Core API's v1 and v2 base URLs."""

    def __init__(
        self,
        v1_url: str,
        v2_url: str,
        *,
        max_concurrency: int = 4,
        timeout_s: float = 10.0,
        max_retry_wait_s: float = 5.0,
        max_quiet_s: float = DEFAULT_MAX_QUIET_S,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        observe: Observer | None = None,
        user_agent: str = "rtb-gateway",
    ) -> None:
        self._bases = {Upstream.V1: v1_url.rstrip("/"), Upstream.V2: v2_url.rstrip("/")}
        self._max_concurrency = max_concurrency
        self._timeout_s = timeout_s
        self._max_retry_wait_s = max_retry_wait_s
        self._max_quiet_s = max_quiet_s
        self._max_answer_bytes = max_answer_bytes
        self._observe = observe
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        # Credentials digest -> loop time before which nothing with them may be sent.
        self._quiet: OrderedDict[bytes, float] = OrderedDict()
        self.in_flight = 0

    async def start(self) -> None:
        self._slots = asyncio.Semaphore(self._max_concurrency)
        connector = aiohttp.TCPConnector(
            limit=self._max_concurrency, ttl_dns_cache=60, keepalive_timeout=30
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": self._user_agent},
            skip_auto_headers=("Accept-Encoding",),
            raise_for_status=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, upstream: Upstream, path: str, query: bytes) -> URL:
        """The upstream URL: base + a path rebuilt from the allow-list + the raw query."""
        target = self._bases[upstream] + path
        if query:
            target += "?" + query.decode("ascii")
        return URL(target, encoded=True)

    async def get(
        self, upstream: Upstream, path: str, query: bytes, *, authorization: str | None = None
    ) -> UpstreamAnswer:
        """GET, riding out 429s within the retry budget."""
        url = self.url(upstream, path, query)
        who = credentials_digest(query, authorization)
        waited = 0.0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            quiet = self._quiet_for(who)
            if quiet > 0:
                if waited + quiet > self._max_retry_wait_s:
                    return _throttled(quiet)
                await asyncio.sleep(quiet + random.uniform(0, 0.05))
                waited += quiet
                continue
            answer = await self._attempt("GET", url, None, None, authorization)
            if answer.status != 429:
                return answer
            wait = self._throttled_by(who, answer)
            if attempt == MAX_ATTEMPTS or waited + wait > self._max_retry_wait_s:
                return _with_retry_after(answer, wait)
            # A little jitter so throttled lookups do not return as one burst.
            await asyncio.sleep(wait + random.uniform(0, 0.05))
            waited += wait
        return _throttled(max(self._quiet_for(who), DEFAULT_RETRY_AFTER_S))

    @property
    def quieted(self) -> int:
        """Credentials currently remembered as quieted (bounded by MAX_QUIET_CREDENTIALS)."""
        return len(self._quiet)

    def _quiet_for(self, who: bytes) -> float:
        until = self._quiet.get(who)
        if until is None:
            return 0.0
        left = until - asyncio.get_running_loop().time()
        if left <= 0:
            del self._quiet[who]
            return 0.0
        return left

    def _throttled_by(self, who: bytes, answer: UpstreamAnswer) -> float:
        """Seconds the upstream asked for, capped; these credentials wait them out."""
        advised = retry_after_seconds(_header(answer, "Retry-After"))
        wait = DEFAULT_RETRY_AFTER_S if advised is None else advised
        wait = min(wait, self._max_quiet_s)
        now = asyncio.get_running_loop().time()
        quiet = self._quiet
        quiet[who] = max(quiet.pop(who, 0.0), now + wait)
        # Bounded upkeep per 429: forget a few lapsed quiets from the oldest end, then
        # the oldest ones outright past the size cap.
        for _ in range(8):
            oldest = next(iter(quiet))
            if quiet[oldest] > now or oldest == who:
                break
            del quiet[oldest]
        while len(quiet) > MAX_QUIET_CREDENTIALS:
            quiet.popitem(last=False)
        return wait

    async def send(
        self,
        method: str,
        upstream: Upstream,
        path: str,
        query: bytes,
        body: bytes,
        content_type: str | None,
        *,
        authorization: str | None = None,
    ) -> UpstreamAnswer:
        """A write (or a read-only POST), forwarded once; a 429 goes straight back (with
        ``Retry-After``)."""
        who = credentials_digest(query, authorization)
        quiet = self._quiet_for(who)
        if quiet > 0:
            return _throttled(quiet)
        url = self.url(upstream, path, query)
        answer = await self._attempt(method, url, body, content_type, authorization)
        if answer.status == 429:
            return _with_retry_after(answer, self._throttled_by(who, answer))
        return answer

    async def _attempt(
        self,
        method: str,
        url: URL,
        body: bytes | None,
        content_type: str | None,
        authorization: str | None = None,
    ) -> UpstreamAnswer:
        session, slots = self._session, self._slots
        if session is None or slots is None:
            raise NotReady()
        headers: dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        if authorization is not None:
            headers["Authorization"] = authorization
        started = time.perf_counter()
        outcome = "error"
        try:
            async with asyncio.timeout(self._timeout_s), slots:
                self.in_flight += 1
                try:
                    async with session.request(
                        method, url, data=body, headers=headers or None, allow_redirects=False
                    ) as resp:
                        if not valid_status(resp.status):
                            resp.close()  # never pooled: what follows is not HTTP we know
                            raise BadGateway(NAME, STATUS_OUTSIDE_RANGE)
                        payload = await read_bounded(resp, self._max_answer_bytes)
                        kept = tuple(
                            (name, value)
                            for name in KEPT_HEADERS
                            if (value := resp.headers.get(name)) is not None and deliverable(value)
                        )
                        content_type = content_type_for(
                            resp.headers.get("Content-Type"), payload, default=""
                        )
                        answer = UpstreamAnswer(resp.status, payload, content_type, kept)
                finally:
                    self.in_flight -= 1
            outcome = _outcome(answer.status)
            return answer
        except AnswerTooLarge as exc:
            outcome = "too_large"
            detail = too_large(exc, "GATEWAY_CORE_API_MAX_ANSWER_BYTES")
            raise BadGateway(NAME, detail) from None
        except TimeoutError:
            outcome = "timeout"
            raise UpstreamTimeout(NAME) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise BadGateway(NAME, describe(exc)) from None
        finally:
            if self._observe is not None:
                self._observe(outcome, time.perf_counter() - started)


def _outcome(status: int) -> str:
    if status == 429:
        return "throttled"
    return "5xx" if status >= 500 else "ok"


def _header(answer: UpstreamAnswer, name: str) -> str | None:
    for key, value in answer.headers:
        if key == name:
            return value
    return None


def _with_retry_after(answer: UpstreamAnswer, wait: float) -> UpstreamAnswer:
    if _header(answer, "Retry-After") is not None:
        return answer
    seconds = str(max(1, math.ceil(wait)))
    return UpstreamAnswer(
        answer.status, answer.body, answer.content_type, (*answer.headers, ("Retry-After", seconds))
    )


_THROTTLED_BODY = (
    b'{"error":"rate_limited","message":"the Core API asked the gateway to slow down; '
    b'retry after the Retry-After header"}'
)


def _throttled(wait: float) -> UpstreamAnswer:
    """The gateway's own 429, for a request it will not send while the upstream is quiet."""
    seconds = str(max(1, math.ceil(wait)))
    return UpstreamAnswer(429, _THROTTLED_BODY, "application/json", (("Retry-After", seconds),))
