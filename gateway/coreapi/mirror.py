"""The Core API mirror: one Starlette route per allow-listed (template, format).

Each route's endpoint is its own ``partial`` bound to its table row, so the metrics
middleware labels a lookup with the template (``/calls/{uuid}.json``), never the path,
and the label set is exactly the table. The handlers check what Starlette's matching
cannot (parameter grammars, percent-escapes, the query's bytes, report parameters), then
answer with the upstream's status, body bytes and content type, ``Link`` re-pointed at
the client's origin.

A form body on a GET (Rack reads one on any method) is merged into the query before
anything else looks at it: it is what is validated, forwarded and cached on
(gateway/core_api/form_query.py). Any other body on a GET is left unread.

A path the table does not hold never reaches a handler: Starlette answers 404 (JSON,
via the app's error handler) and nothing is forwarded.

A write clears its group's cached reads before its answer goes back, unless the upstream
refused it (4xx: nothing changed). A write that timed out or failed on the way may have
landed, so it clears them too.
"""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.coreapi.client import CoreApiClient
from gateway.coreapi.credentials import authorization_of
from gateway.coreapi.form_query import QUERY_OK, merge_form
from gateway.coreapi.links import client_origin, rewrite_link
from gateway.coreapi.lookups import Lookups
from gateway.coreapi.reports import validate_report_query
from gateway.coreapi.route_table import (
    CHECK_ROUTES,
    READ_ROUTES,
    WRITE_ROUTES,
    CoreRoute,
    raw_path_is_plain,
    upstream_path,
)
from gateway.errors import GatewayError, InvalidQuery, MethodNotAllowed, NotFound, UriTooLong
from gateway.wire.answer import UpstreamAnswer
from gateway.wire.bodies import read_body, read_form_of_get

MAX_QUERY_BYTES = 8192


def _checked(request: Request, route: CoreRoute, fmt: str) -> tuple[str, bytes]:
    """(upstream path, raw query) for a request the table admits; 404/400 otherwise."""
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    if not raw_path_is_plain(raw_path):
        raise NotFound()
    path = upstream_path(route, fmt, request.path_params)
    if path is None:
        raise NotFound()
    query: bytes = scope["query_string"]
    if len(query) > MAX_QUERY_BYTES:
        raise UriTooLong(f"the query string is over {MAX_QUERY_BYTES} bytes")
    if not QUERY_OK.fullmatch(query):
        raise InvalidQuery("the query string must be percent-encoded ASCII")
    return path, query


class CoreApiEndpoints:
    """The mirror's handlers, bound to the lookups and the Core API client they use."""

    def __init__(
        self,
        lookups: Lookups,
        client: CoreApiClient,
        *,
        allow_writes: bool,
        max_body_bytes: int,
        trust_forwarded: bool,
    ) -> None:
        self.lookups = lookups
        self.client = client
        self.allow_writes = allow_writes
        self.max_body_bytes = max_body_bytes
        self.trust_forwarded = trust_forwarded

    async def lookup(self, request: Request, *, route: CoreRoute, fmt: str) -> Response:
        """GET (and HEAD) on an allow-listed read route: cached, coalesced, polite."""
        path, query = _checked(request, route, fmt)
        form = await read_form_of_get(request, MAX_QUERY_BYTES)
        if form:
            query = merge_form(query, form, max_bytes=MAX_QUERY_BYTES)
        if route.validate_reports:
            validate_report_query(query)
        authorization = authorization_of(request.scope) if route.auth else None
        answer, result = await self.lookups.get(
            route.upstream, path, query, group=route.group, authorization=authorization
        )
        return self._respond(request, answer, result)

    async def write(self, request: Request, *, route: CoreRoute, fmt: str, allow: str) -> Response:
        """A write route of the reference: 405 unless writes are on; then forwarded once."""
        path, query = _checked(request, route, fmt)
        if not self.allow_writes:
            raise MethodNotAllowed(
                f"{request.method} to the Core API is turned off on this gateway "
                "(GATEWAY_CORE_API_ALLOW_WRITES)",
                headers={"Allow": allow},
            )
        body = await read_body(request, self.max_body_bytes)
        authorization = authorization_of(request.scope) if route.auth else None
        try:
            answer = await self.client.send(
                request.method,
                route.upstream,
                path,
                query,
                body,
                request.headers.get("content-type"),
                authorization=authorization,
            )
        except GatewayError:
            await self.lookups.invalidate(route.group)  # it may have landed
            raise
        if not 400 <= answer.status < 500:
            await self.lookups.invalidate(route.group)
        return self._respond(request, answer, None)

    async def check(self, request: Request, *, route: CoreRoute, fmt: str) -> Response:
        """A POST that only reads (``caller_list_checks``): forwarded once whatever the
        writes flag says; never cached, never retried, clears nothing."""
        path, query = _checked(request, route, fmt)
        body = await read_body(request, self.max_body_bytes)
        answer = await self.client.send(
            "POST",
            route.upstream,
            path,
            query,
            body,
            request.headers.get("content-type"),
            authorization=authorization_of(request.scope) if route.auth else None,
        )
        return self._respond(request, answer, None)

    def _respond(self, request: Request, answer: UpstreamAnswer, cache: str | None) -> Response:
        headers: dict[str, str] = {}
        if answer.content_type:
            headers["content-type"] = answer.content_type
        for name, value in answer.headers:
            if name == "Link":
                origin = client_origin(request.scope, trust_forwarded=self.trust_forwarded)
                value = rewrite_link(value, origin)
                if not value:  # every link in it led elsewhere and was dropped
                    continue
            headers[name.lower()] = value
        if cache is not None:
            headers["x-cache"] = cache
        return Response(answer.body, status_code=answer.status, headers=headers)

    def routes(self) -> list[BaseRoute]:
        """Every allow-listed (template, format) as Starlette routes: reads, writes, checks."""
        routes: list[BaseRoute] = []
        read_paths: set[str] = set()
        for route in READ_ROUTES:
            for fmt, path in zip(route.formats, route.paths(), strict=True):
                endpoint = partial(self.lookup, route=route, fmt=fmt)
                routes.append(Route(path, endpoint, methods=["GET"], name=f"core_api {path}"))
                read_paths.add(path)
        for route in WRITE_ROUTES:
            for fmt, path in zip(route.formats, route.paths(), strict=True):
                allow = "GET, HEAD" if path in read_paths else ""
                endpoint = partial(self.write, route=route, fmt=fmt, allow=allow)
                routes.append(
                    Route(path, endpoint, methods=list(route.methods), name=f"core_api {path}")
                )
        for route in CHECK_ROUTES:
            for fmt, path in zip(route.formats, route.paths(), strict=True):
                endpoint = partial(self.check, route=route, fmt=fmt)
                routes.append(Route(path, endpoint, methods=["POST"], name=f"core_api {path}"))
        return routes
