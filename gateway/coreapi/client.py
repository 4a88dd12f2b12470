"""CoreApiClient: the gateway's only way to the Core API, polite by construction.

One pooled httpx2 client per process. Not the RTB path's own HTTP/1.1 client
(:mod:`gateway.wire.http1`): lookups are cached and coalesced, so this client is off
the ping path and can afford a general-purpose stack with TLS, proxies left off and a
maintained release line; httpx2 is also what the CLI speaks, so the gateway has two HTTP
stacks, not three. Politeness lives here rather than in the handlers so that no caller
can forget it:

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
:class:`~gateway.wire.answer.UpstreamAnswer` or a :class:`~gateway.errors.GatewayError`::

    TimeoutError (queue + request over the timeout)   -> 504 upstream_timeout
    httpx2.RequestError / OSError                     -> 502 bad_gateway (words from
                                                         upstream/failures.py)
    an answer over ``max_answer_bytes``               -> 502 bad_gateway (outcome
                                                         ``too_large``, connection dropped)

The client is made to behave as the aiohttp session it replaced did: no
``Accept-Encoding`` asked for (an answer is stored and sent on as received), no cookies
kept between requests (one company's lookup must not carry another's cookie), no proxy
or ``.netrc`` taken from the environment (``.netrc`` could add an ``Authorization``), no
redirects followed. A body is streamed and counted (:func:`read_bounded`), so an answer
over ``max_answer_bytes`` is refused while it arrives and its connection closed unread.

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
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx2

from gateway.coreapi.credentials import credentials_digest
from gateway.errors import BadGateway, NotReady, UpstreamTimeout
from gateway.wire.answer import (
    STATUS_OUTSIDE_RANGE,
    AnswerTooLarge,
    UpstreamAnswer,
    content_type_for,
    deliverable,
    valid_status,
)
from gateway.wire.failures import Phase, describe, too_large

Observer = Callable[[str, float], None]


class Upstream(Enum):
    """Which base URL serves a route: the unversioned/v1 API, or v2 (v3, v4 too)."""

    V1 = "core_api"  # GATEWAY_CORE_API_URL
    V2 = "core_api_v2"  # GATEWAY_CORE_API_V2_URL


NAME = "core_api"
DEFAULT_RETRY_AFTER_S = 1.0
MAX_ATTEMPTS = 8
# Upstream headers that travel back to the client besides Content-Type. Link is a list
# header (RFC 8288): several Link lines travel on as one, comma-joined; Retry-After is a
# single value, the first one counts.
KEPT_HEADERS = ("Link", "Retry-After")
_LIST_HEADERS = frozenset({"Link"})
# Idle pooled connections are closed after this (aiohttp's keepalive_timeout was 30 s).
KEEPALIVE_EXPIRY_S = 30.0
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
        self._client: httpx2.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        # Credentials digest -> loop time before which nothing with them may be sent.
        self._quiet: OrderedDict[bytes, float] = OrderedDict()
        self.in_flight = 0

    async def start(self) -> None:
        self._slots = asyncio.Semaphore(self._max_concurrency)
        client = httpx2.AsyncClient(
            headers={"User-Agent": self._user_agent},
            cookies=_no_cookies(),
            # The whole attempt is also under asyncio.timeout (queue included); these
            # are the per-phase backstops of the same length.
            timeout=httpx2.Timeout(self._timeout_s),
            limits=httpx2.Limits(
                max_connections=self._max_concurrency,
                max_keepalive_connections=self._max_concurrency,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
            follow_redirects=False,
            trust_env=False,
        )
        # Asked for nothing compressed, as before: the answer is cached and sent on as is.
        del client.headers["Accept-Encoding"]
        self._client = client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def url(self, upstream: Upstream, path: str, query: bytes) -> httpx2.URL:
        """The upstream URL: base + a path rebuilt from the allow-list + the raw query.

        httpx2 keeps the query's bytes as they are (``%XX`` escapes, ``+``, ``|``, ``{``
        included), except that it escapes a space, ``"``, ``<`` and ``>``, which no valid
        request target holds raw, and ends the query at a ``#``.
        """
        target = self._bases[upstream] + path
        if query:
            target += "?" + query.decode("ascii")
        return httpx2.URL(target)

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
        url: httpx2.URL,
        body: bytes | None,
        content_type: str | None,
        authorization: str | None = None,
    ) -> UpstreamAnswer:
        client, slots = self._client, self._slots
        if client is None or slots is None:
            raise NotReady()
        headers: dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        if authorization is not None:
            headers["Authorization"] = authorization
        started = time.perf_counter()
        outcome = "error"
        phase = Phase.HEAD
        try:
            async with asyncio.timeout(self._timeout_s), slots:
                self.in_flight += 1
                try:
                    async with client.stream(
                        method, url, content=body, headers=headers or None
                    ) as resp:
                        if not valid_status(resp.status_code):
                            # Never pooled: leaving the stream unread closes the connection.
                            raise BadGateway(NAME, STATUS_OUTSIDE_RANGE)
                        phase = Phase.BODY
                        payload = await read_bounded(resp, self._max_answer_bytes)
                        kept = _kept_headers(resp.headers)
                        content_type = content_type_for(
                            resp.headers.get("Content-Type"), payload, default=""
                        )
                        answer = UpstreamAnswer(resp.status_code, payload, content_type, kept)
                finally:
                    self.in_flight -= 1
            outcome = _outcome(answer.status)
            return answer
        except AnswerTooLarge as exc:
            outcome = "too_large"
            detail = too_large(exc, "GATEWAY_CORE_API_MAX_ANSWER_BYTES")
            raise BadGateway(NAME, detail) from None
        except (TimeoutError, httpx2.TimeoutException):
            outcome = "timeout"
            raise UpstreamTimeout(NAME) from None
        except (httpx2.RequestError, OSError) as exc:
            raise BadGateway(NAME, describe(exc, phase)) from None
        finally:
            if self._observe is not None:
                self._observe(outcome, time.perf_counter() - started)


async def read_bounded(resp: httpx2.Response, limit: int) -> bytes:
    """The whole body, or :class:`AnswerTooLarge` as soon as it is known to be over ``limit``.

    Refused from ``Content-Length`` before a byte is read, else counted as it arrives
    (decoded, if the upstream compressed it unasked), so at most ``limit`` plus one
    chunk is ever held. On refusal the caller's ``stream()`` block closes the response
    unread, and httpcore2 closes a connection whose answer was not read to the end
    rather than pooling it: the rest is never drained into the pool.
    """
    declared = resp.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise AnswerTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _kept_headers(headers: httpx2.Headers) -> tuple[tuple[str, str], ...]:
    kept = []
    for name in KEPT_HEADERS:
        values = headers.get_list(name)
        if not values:
            continue
        value = ", ".join(values) if name in _LIST_HEADERS else values[0]
        if deliverable(value):
            kept.append((name, value))
    return tuple(kept)


def _no_cookies() -> CookieJar:
    """A jar that accepts no cookie, so none is ever sent on another request."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


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
