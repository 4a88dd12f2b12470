"""The gateway's errors: one tree, one JSON rendering, one raw-ASGI writer.

Every answer the gateway gives instead of forwarding is a :class:`GatewayError`: a JSON
object whose ``"error"`` member is a short machine-readable string, as the Core API does
(``{"error": "..."}``), then a human ``"message"`` and, for validation failures,
``"fields"`` (field name -> problem). Each class fixes its status and error code; the
message, fields and headers are given when it is raised::

    GatewayError                       an answer instead of forwarding (JSON, see above)
    ├── RequestError                   4xx: the request is wrong; nothing was forwarded
    │   ├── BadRequest                 400 bad_request
    │   ├── MalformedJson              400 malformed_json
    │   ├── BadEncoding                400 bad_encoding
    │   ├── InvalidQuery               400 invalid_request   (+ fields for report params)
    │   ├── ClientDisconnected         400 client_disconnected
    │   ├── Unauthorized               401 unauthorized       (admin routes: Bearer token)
    │   ├── NotFound                   404 not_found
    │   ├── MethodNotAllowed           405 method_not_allowed (+ Allow)
    │   ├── RequestTimeout             408 request_timeout
    │   ├── PayloadTooLarge            413 payload_too_large
    │   ├── UriTooLong                 414 uri_too_long
    │   ├── UnsupportedMediaType       415 unsupported_media_type
    │   ├── InvalidFields              422 invalid_request   (+ fields)
    │   ├── HeadersTooLarge            431 headers_too_large
    │   └── HttpError                  400 http_error         (or the status Starlette gave)
    ├── Refusal                        the request is fine; this gateway declines it
    │   ├── Forbidden                  403 forbidden          (RTB key outside the allow-list)
    │   ├── LoopbackOnly               403 forbidden          (admin routes, no token set)
    │   ├── RateLimited                429 rate_limited       (+ Retry-After)
    │   └── Overloaded                 503 overloaded         (+ Retry-After when retrying helps)
    ├── UpstreamError                  the upstream gave no usable answer
    │   ├── BadGateway                 502 bad_gateway
    │   ├── UpstreamUnavailable        503 upstream_unavailable (breaker open, + Retry-After)
    │   └── UpstreamTimeout            504 upstream_timeout
    ├── LedgerUnavailable              503 ledger_unavailable (the ledger's store cannot be read)
    ├── NotReady                       503 not_ready          (starting or stopping)
    │   └── Draining                   503 draining           (SIGTERM received)
    └── InternalError                  500 internal_error     (the one 500: observe/middleware.py)

Beside the tree, errors that are never answered as they are; each is caught and
translated where it is raised from:

    ConfigError(ValueError)            config.py             a GATEWAY_* setting -> exit 2
    InvalidPhoneNumber(ValueError)     ping/phone.py         -> InvalidFields (422)
    RedisUnavailable                   wire/redis.py         any Redis call failed; the
                                                             shield fails open, the rate
                                                             limits and cache are skipped
    LinkError                          wire/resp.py          the RESP client's link to a
    └── LinkTimeout(TimeoutError)                            node failed or timed out
                                                             -> RedisUnavailable
    HttpFailure                        wire/http1.py         the HTTP/1.1 client's exchange
    ├── ConnectFailed                                        failed; each kind carries its
    ├── TlsFailed                                            words for the 502's message:
    ├── ClosedEarly                                          -> BadGateway (502) in
    ├── Reset                                                ping/forwarder.py; httpx2's
    ├── BrokenBody                                           errors map onto the same kinds
    ├── Malformed                                            (wire/failures.py), so every
    └── Unreadable                                           upstream fails in one vocabulary
    AnswerTooLarge                     wire/answer.py        an answer over its byte limit
                                                             -> BadGateway (502), connection
                                                             dropped
    CacheError, CacheBypassed          coreapi/cache.py      lookup cache failed -> upstream
    StoreUnavailable                   ledger/store.py       the ledger's store cannot answer
                                                             -> writer retries; export 503
    ExportError                        cli/export_state.py   `gateway calls export` -> exit 1
    _Refused                           wire/protocol.py      a head too big or too slow

Third-party errors are translated at the boundary, one table each: httpx2's in
``wire/failures.py``, msgspec's in ``ping/parse.py``, redis-py's and the RESP
client's in ``wire/redis.py`` (the one Redis seam, used by shield, rate limits and cache),
asyncpg's in ``ledger/postgres.py``.

Instances are immutable and made per raise. A re-raised instance grows its traceback
(and keeps every frame in it alive) each time, so an instance shared between requests is
a memory leak: constructing one in a module body raises ``TypeError`` at import. To add
a header to an error already raised, :meth:`GatewayError.with_headers` returns a new one.
Answers written without Starlette (the ping's fast lane, load shedding, the 500 of the
request middleware, the readiness probe) go through :func:`send_error`; before there is
an ASGI app at all (wire/protocol.py), :func:`http_bytes`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import ClassVar, NamedTuple

import msgspec
from starlette.responses import Response
from starlette.types import Send

_encoder = msgspec.json.Encoder()

JSON = "application/json"
_JSON_TYPE = JSON.encode()
_EMPTY: Mapping[str, str] = MappingProxyType({})
_FROZEN = frozenset({"status", "error", "message", "fields", "headers"})


class GatewayError(Exception):
    """An answer the gateway gives instead of forwarding: status + error code + message."""

    status: ClassVar[int] = 500
    error: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "the gateway failed; see its logs"

    message: str
    fields: Mapping[str, str] | None
    headers: Mapping[str, str]

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        _refuse_module_level()
        text = message if message is not None else self.default_message
        super().__init__(text)
        _set(self, "message", text)
        _set(self, "fields", MappingProxyType(dict(fields)) if fields else None)
        _set(self, "headers", MappingProxyType(dict(headers)) if headers else _EMPTY)

    def __setattr__(self, name: str, value: object) -> None:
        if name in _FROZEN:
            raise AttributeError(f"{type(self).__name__} is immutable; raise a new one")
        super().__setattr__(name, value)

    def with_headers(self, headers: Mapping[str, str]) -> GatewayError:
        """A new error like this one, with ``headers`` added (the original is untouched)."""
        copy = type(self).__new__(type(self))
        Exception.__init__(copy, self.message)
        for name in _FROZEN - {"headers"}:
            if name in self.__dict__:
                _set(copy, name, self.__dict__[name])
        _set(copy, "headers", MappingProxyType({**self.headers, **headers}))
        return copy

    def body(self) -> bytes:
        payload: dict[str, object] = {"error": self.error, "message": self.message}
        if self.fields:
            payload["fields"] = dict(self.fields)
        return _encoder.encode(payload)

    def response(self) -> Response:
        """This error as a Starlette response (for handlers behind Starlette's layers)."""
        return Response(
            self.body(), status_code=self.status, media_type=JSON, headers=dict(self.headers)
        )


def _set(error: GatewayError, name: str, value: object) -> None:
    Exception.__setattr__(error, name, value)


def _refuse_module_level() -> None:
    frame = sys._getframe(2)
    while frame.f_back is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    if frame.f_code.co_name == "<module>":
        raise TypeError(
            "a GatewayError made in a module body would be shared by every request that "
            "raises it (its traceback grows on each raise); create it where it is raised, "
            "or keep its answer with prerender()"
        )


# -- the tree ----------------------------------------------------------------------------


class RequestError(GatewayError):
    """The request itself is wrong (4xx); nothing was forwarded."""

    status = 400
    error = "bad_request"
    default_message = "the request is not valid"


class BadRequest(RequestError):
    status, error = 400, "bad_request"


class MalformedJson(RequestError):
    status, error = 400, "malformed_json"
    default_message = "the body is not valid JSON"


class BadEncoding(RequestError):
    status, error = 400, "bad_encoding"
    default_message = "the body is not valid UTF-8"


class InvalidQuery(RequestError):
    status, error = 400, "invalid_request"


class ClientDisconnected(RequestError):
    status, error = 400, "client_disconnected"
    default_message = "the client went away"


class NotFound(RequestError):
    status, error = 404, "not_found"
    default_message = "no such route"


class MethodNotAllowed(RequestError):
    status, error = 405, "method_not_allowed"
    default_message = "this method is not allowed here"


class Unauthorized(RequestError):
    status, error = 401, "unauthorized"
    default_message = "admin routes need Authorization: Bearer <GATEWAY_ADMIN_TOKEN>"


class RequestTimeout(RequestError):
    status, error = 408, "request_timeout"
    default_message = "the request did not arrive in time"


class PayloadTooLarge(RequestError):
    status, error = 413, "payload_too_large"


class UriTooLong(RequestError):
    status, error = 414, "uri_too_long"


class UnsupportedMediaType(RequestError):
    status, error = 415, "unsupported_media_type"


class InvalidFields(RequestError):
    """422 naming every offending field; the message lists their names."""

    status, error = 422, "invalid_request"

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__(f"invalid fields: {', '.join(sorted(fields))}", fields=fields)


class HeadersTooLarge(RequestError):
    status, error = 431, "headers_too_large"
    default_message = "the request headers are too large"


class HttpError(RequestError):
    """An HTTP error Starlette raised that has no class of its own: its status as is."""

    error = "http_error"

    def __init__(
        self, status: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message, headers=headers)
        _set(self, "status", status)


class Refusal(GatewayError):
    """The request is fine; this gateway declines to serve it (policy or capacity)."""

    status, error = 403, "forbidden"


class Forbidden(Refusal):
    status, error = 403, "forbidden"
    default_message = "this RTB key is not accepted by this gateway"


class LoopbackOnly(Refusal):
    status, error = 403, "forbidden"
    default_message = "admin routes answer loopback clients only while GATEWAY_ADMIN_TOKEN is unset"


class RateLimited(Refusal):
    status, error = 429, "rate_limited"


class Overloaded(Refusal):
    status, error = 503, "overloaded"


class UpstreamError(GatewayError):
    """The upstream gave no usable answer."""

    status, error = 502, "bad_gateway"


class BadGateway(UpstreamError):
    status, error = 502, "bad_gateway"

    def __init__(self, upstream: str, detail: str) -> None:
        super().__init__(f"the {upstream} upstream failed: {detail}")


class UpstreamUnavailable(UpstreamError):
    status, error = 503, "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status, error = 504, "upstream_timeout"

    def __init__(self, upstream: str) -> None:
        super().__init__(f"the {upstream} upstream did not answer in time")


class LedgerUnavailable(GatewayError):
    status, error = 503, "ledger_unavailable"
    default_message = "the ledger store cannot be read right now; try again shortly"


class NotReady(GatewayError):
    status, error = 503, "not_ready"
    default_message = "the gateway is starting or stopping"


class Draining(NotReady):
    status, error = 503, "draining"
    default_message = "the gateway is shutting down"


class InternalError(GatewayError):
    status, error = 500, "internal_error"
    default_message = "the gateway failed; see its logs"


# -- writing an error without Starlette ----------------------------------------------------


class Rendered(NamedTuple):
    """An error's status, ASGI header pairs and body, encoded once (reusable, unraisable)."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


def render(error: GatewayError) -> Rendered:
    return _rendered(error.status, error.body(), error.headers)


def prerender(
    kind: type[GatewayError], message: str | None = None, headers: Mapping[str, str] | None = None
) -> Rendered:
    """The answer an instance of ``kind`` would give, without making one (safe anywhere,
    module bodies included: a :class:`Rendered` cannot be raised)."""
    text = message if message is not None else kind.default_message
    body = _encoder.encode({"error": kind.error, "message": text})
    return _rendered(kind.status, body, headers or _EMPTY)


def _rendered(status: int, body: bytes, headers: Mapping[str, str]) -> Rendered:
    pairs = [(b"content-type", _JSON_TYPE), (b"content-length", b"%d" % len(body))]
    for name, value in headers.items():
        pairs.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return Rendered(status, tuple(pairs), body)


async def send_error(
    send: Send,
    error: GatewayError | Rendered,
    extra_headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with ``error`` on a raw ASGI ``send`` (the one writer outside Starlette)."""
    rendered = error if isinstance(error, Rendered) else render(error)
    await send(
        {
            "type": "http.response.start",
            "status": rendered.status,
            "headers": [*rendered.headers, *extra_headers],
        }
    )
    await send({"type": "http.response.body", "body": rendered.body})


def http_bytes(error: Rendered, reason: str) -> bytes:
    """``error`` as a whole HTTP/1.1 answer that closes the connection (no ASGI app yet)."""
    status, headers, body = error
    head = [f"HTTP/1.1 {status} {reason}".encode("ascii")]
    head += [name + b": " + value for name, value in headers]
    head.append(b"connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + body
