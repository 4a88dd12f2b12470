"""``GET /openapi.json``: the gateway's own routes, parameters and error bodies.

Written out by hand from the contract rather than inferred from handlers, because the
interesting part (fields that may come from the query *or* the body, the upstream's
answer passed through unchanged, the gateway's own error shape) is not in any signature.
The Core API lookups are generated from the allow-list table
(``gateway.coreapi.route_table``), so the document cannot drift from what is served.

Pass-through answers are described as ``default`` responses: whatever status and body the
upstream sent. Every answer the gateway makes itself is an :data:`ERROR` object.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway import __version__
from gateway.coreapi.route_table import CHECK_ROUTES, PARAMS, READ_ROUTES, WRITE_ROUTES
from gateway.ledger.outcomes import ANSWER_OUTCOMES
from gateway.shield.base import X_SHIELD

_REF_ERROR = {"$ref": "#/components/schemas/Error"}

ERROR: dict[str, Any] = {
    "type": "object",
    "description": "An answer made by the gateway itself (Core API convention).",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "machine-readable code"},
        "message": {"type": "string"},
        "fields": {
            "type": "object",
            "description": "offending field -> problem (validation errors only)",
            "additionalProperties": {"type": "string"},
        },
    },
}

UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# Accepted: 1-128 of these characters except "." and ".."; the pattern is the conservative
# subset that starts with a character other than a dot.
_RTB_KEY = {"type": "string", "pattern": "^[A-Za-z0-9_\\-][A-Za-z0-9_.\\-]{0,127}$"}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _REF_ERROR}},
    }
    if headers:
        out["headers"] = headers
    return out


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_PASSED_THROUGH = {
    "description": "the upstream's status and body, unchanged",
    "content": {"application/json": {"schema": {}}},
}
_REQUEST_ID = {
    "X-Request-ID": {"description": "echoed when sent, otherwise generated", "schema": {}}
}

# Schemas describe the canonical ping (fields in the query string, as Retreaver documents
# it); the same fields may also come in a JSON or form body, where they win. Patterns are
# conservative subsets of what is accepted, so generated examples are valid requests:
# caller_number accepts any valid number; the pattern is the US toll-free plan.
_PHONE = {
    "type": "string",
    "pattern": "^\\+1(800|833|844|855|866|877|888)[2-9][0-9]{6}$",
    "description": "any valid phone number, normalised to E.164 (NANP ten digits get +1)",
}
_PUBLISHER = {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,255}$"}
_PING_FIELDS: dict[str, Any] = {
    "key": {**_RTB_KEY, "description": "the campaign's RTB key"},
    "publisher_id": {**_PUBLISHER, "description": "or its alias source_id"},
    "caller_number": _PHONE,
}
_PING_OPTIONAL: dict[str, Any] = {
    "inbound_number": {
        **_PHONE,
        "pattern": "^(|\\+1(800|833|844|855|866|877|888)[2-9][0-9]{6})$",
        "description": "optional (empty means absent); normalised to E.164",
    },
}
_TAG_VALUE = {"type": "string", "maxLength": 1024, "pattern": "^[^\\x00-\\x1f\\x7f]*$"}
_PING_BODY = {
    "type": "object",
    "description": "any field of the query; every other member is a tag (scalar only)",
    "properties": {**_PING_FIELDS, **_PING_OPTIONAL, "source_id": _PUBLISHER},
    "propertyNames": {"pattern": "^[A-Za-z0-9_.\\-]{1,64}$"},
    "maxProperties": 100,
    "additionalProperties": _TAG_VALUE,
}

_CONFIRM_FIELDS: dict[str, Any] = {
    "key": {**_RTB_KEY, "description": "the campaign's RTB key"},
    "status": {"type": "string", "enum": ["confirmed"]},
}
_CONFIRM_BODY = {
    "type": "object",
    "description": "key and status; any other member (api_key, publisher_id...) is dropped",
    "properties": _CONFIRM_FIELDS,
    "additionalProperties": True,
}


def _query(required: dict[str, Any], optional: dict[str, Any] | None = None) -> list[dict]:
    out = [{"name": n, "in": "query", "required": True, "schema": s} for n, s in required.items()]
    out += [
        {"name": n, "in": "query", "required": False, "schema": s}
        for n, s in (optional or {}).items()
    ]
    return out


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": False,
        "description": "fields may also come in the body (JSON or form); the body wins",
        "content": {
            "application/json": {"schema": schema},
            "application/x-www-form-urlencoded": {"schema": schema},
        },
    }


_INPUT_ERRORS = {
    "400": _error("malformed JSON, bad encoding or Content-Length"),
    "413": _error("body larger than GATEWAY_MAX_BODY_BYTES"),
    "415": _error("content type other than JSON or a form"),
    "422": _error("invalid fields; 'fields' names each one"),
}
_UPSTREAM_ERRORS = {
    "502": _error("the upstream was unreachable or broken"),
    "504": _error("the upstream did not answer within the deadline"),
}


def _rtb_paths() -> dict[str, Any]:
    reserve = {
        "summary": "Publisher ping: forwarded to Retreaver RTB or answered by the ping shield",
        "operationId": "createReservation",
        "tags": ["rtb"],
        "parameters": _query(_PING_FIELDS, _PING_OPTIONAL),
        "requestBody": _body(_PING_BODY),
        "responses": {
            "200": {
                **_json(
                    "the upstream's answer; a shielded repeat adds retreaver_ping_shield: true",
                    {"$ref": "#/components/schemas/Reservation"},
                ),
                "headers": {
                    **_REQUEST_ID,
                    "X-Shield": {
                        "schema": {
                            "type": "string",
                            "enum": list(dict.fromkeys(X_SHIELD.values())),
                        }
                    },
                    "X-Outcome": {
                        "description": "the answer's outcome code (on every publisher answer)",
                        "schema": {"type": "string", "enum": [c for c, _ in ANSWER_OUTCOMES]},
                    },
                },
            },
            **_INPUT_ERRORS,
            "405": _error("only POST is allowed"),
            "500": _error("the gateway failed; see its logs"),
            **_UPSTREAM_ERRORS,
            "default": _PASSED_THROUGH,
        },
    }
    confirm = {
        "summary": "Confirm a reservation (forwarded, never answered from the shield)",
        "tags": ["rtb"],
        "parameters": [
            {
                "name": "uuid",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": UUID_PATTERN},
            },
            *_query(_CONFIRM_FIELDS),
        ],
        "requestBody": _body(_CONFIRM_BODY),
        "responses": {
            "200": _json(
                "the reservation, confirmed; or {uuid, status: no-target}",
                {"$ref": "#/components/schemas/Reservation"},
            ),
            **_INPUT_ERRORS,
            "405": _error("only PUT and PATCH are allowed"),
            "500": _error("the gateway failed; see its logs"),
            **_UPSTREAM_ERRORS,
            "default": _PASSED_THROUGH,
        },
    }
    data_fields = {
        "caller_number": {**_PHONE, "description": "this or call_uuid"},
        "call_uuid": {"type": "string", "pattern": UUID_PATTERN},
    }
    data_responses = {
        "200": _json("retreaverdata.com's answer (tag_values, status), unchanged", {}),
        **_INPUT_ERRORS,
        "403": _error("the key is not on GATEWAY_RTB_ALLOWED_KEYS"),
        "429": _error("over a rate limit; retry after Retry-After"),
        "500": _error("the gateway failed; see its logs"),
        **_UPSTREAM_ERRORS,
        "default": _PASSED_THROUGH,
    }
    data_summary = "Call data writing: tags for a caller, validated like a ping, forwarded once"
    write_post = {
        "summary": data_summary,
        "operationId": "dataWritingPost",
        "tags": ["rtb"],
        "parameters": _query({"key": {**_RTB_KEY, "description": "the postback key"}}),
        "requestBody": _body(
            {**_PING_BODY, "properties": {"key": _RTB_KEY, **data_fields}, "required": ["key"]}
        ),
        "responses": data_responses,
    }
    write_get = {
        "summary": data_summary,
        "operationId": "dataWritingGet",
        "tags": ["rtb"],
        "parameters": [
            {"name": "key", "in": "path", "required": True, "schema": _RTB_KEY},
            *_query({"caller_number": data_fields["caller_number"]}),
        ],
        "responses": data_responses,
    }
    write_get_query = {
        "summary": f"{data_summary} (the key in the query, served as /data_writing/{{key}})",
        "operationId": "dataWritingGetQuery",
        "tags": ["rtb"],
        "parameters": _query(
            {"key": {**_RTB_KEY, "description": "the postback key"}},
            {"caller_number": data_fields["caller_number"]},
        ),
        "responses": data_responses,
    }
    return {
        "/rtbs.json": {"post": reserve},
        "/data_writing": {"post": write_post, "get": write_get_query},
        "/data_writing/{key}": {"get": write_get},
        "/rtbs/{uuid}.json": {
            "put": {**confirm, "operationId": "confirmReservationPut"},
            "patch": {**confirm, "operationId": "confirmReservationPatch"},
        },
    }


_ANALYTICS_PARAMS = [
    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "by", "in": "query", "schema": {"enum": ["publisher", "sub_id"]}},
    {"name": "granularity", "in": "query", "schema": {"enum": ["total", "day", "hour"]}},
]
_ADMIN_REFUSALS = {
    "401": _error("a wrong or missing Bearer token"),
    "403": _error("not a loopback client while no admin token is set"),
}


def _analytics_paths() -> dict[str, Any]:
    """Publisher analytics (gateway/ledger/analytics.py; docs/pages/analytics.md)."""
    answers = {
        "400": _error("a bad from, to, by or granularity (named in fields)"),
        **_ADMIN_REFUSALS,
        "503": _error("the ledger store cannot be read now"),
    }
    return {
        "/admin/publishers.json": {
            "get": {
                "summary": "Per publisher (and sub-ID) rows over a range, from hourly rollups",
                "operationId": "publishersJson",
                "tags": ["admin"],
                "parameters": _ANALYTICS_PARAMS,
                "responses": {
                    "200": _json("rows (and whether they were truncated)", {"type": "object"}),
                    **answers,
                },
            }
        },
        "/admin/publishers.csv": {
            "get": {
                "summary": "The same rows as CSV (X-Truncated: true when cut)",
                "operationId": "publishersCsv",
                "tags": ["admin"],
                "parameters": _ANALYTICS_PARAMS,
                "responses": {
                    "200": {
                        "description": "rows",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    **answers,
                },
            }
        },
        "/admin/publishers": {
            "get": {
                "summary": "A page for people: the funnel per publisher and a chart; it fetches "
                "publishers.json (a browser without the token gets it with the 401, to ask)",
                "operationId": "publishersPage",
                "tags": ["admin"],
                "responses": {
                    "200": {
                        "description": "the page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    **_ADMIN_REFUSALS,
                },
            }
        },
    }


def _ops_paths() -> dict[str, Any]:
    status = {"type": "object", "properties": {"status": {"type": "string"}}}
    return {
        "/healthz": {
            "get": {
                "summary": "Liveness: 200 while the process runs",
                "operationId": "healthz",
                "tags": ["operations"],
                "responses": {"200": _json("alive", status)},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: 503 while starting or draining after SIGTERM",
                "operationId": "readyz",
                "tags": ["operations"],
                "responses": {
                    "200": _json("ready", status),
                    "503": _error("starting (not_ready) or draining"),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus text format",
                "operationId": "metrics",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/stats": {
            "get": {
                "summary": "Per-route rps, latency quantiles, error and shield ratios (10/60 s), "
                "state and alerts, for every worker of the replica",
                "operationId": "stats",
                "tags": ["operations"],
                "responses": {
                    "200": _json("rolling statistics", {"$ref": "#/components/schemas/Stats"})
                },
            }
        },
        "/admin/ledger.ndjson": {
            "get": {
                "summary": "Ledger events, oldest first, one JSON object a line (streamed); "
                "Bearer GATEWAY_ADMIN_TOKEN, or loopback clients only when it is unset",
                "operationId": "ledgerExport",
                "tags": ["admin"],
                "parameters": [
                    {"name": "since", "in": "query", "schema": {"type": "string"}},
                    {"name": "until", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "events",
                        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                    },
                    "400": _error("a bad since, until or limit (named in fields)"),
                    "401": _error("a wrong or missing Bearer token"),
                    "403": _error("not a loopback client while no admin token is set"),
                    "503": _error("the ledger store cannot be read now"),
                },
            }
        },
        "/admin/reconcile": {
            "post": {
                "summary": "Run one reconciliation pass now and answer its summary (calls_read, "
                "pages, matched, called, late_call, not_called, errors; ran=false when another "
                "replica holds the pass)",
                "operationId": "reconcile",
                "tags": ["admin"],
                "responses": {
                    "200": _json("the pass's summary", {"type": "object"}),
                    "401": _error("a wrong or missing Bearer token"),
                    "403": _error("not a loopback client while no admin token is set"),
                    "409": _error("reconciliation is off (GATEWAY_RECONCILE_API_KEY unset)"),
                },
            }
        },
        **_analytics_paths(),
        "/status": {
            "get": {
                "summary": "A live HTML page drawn from /stats (refreshes itself)",
                "operationId": "status",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "the status page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "tags": ["operations"],
                "responses": {"200": _json("OpenAPI 3.0 document", {"type": "object"})},
            }
        },
    }


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# The reference serves XML as text/xml (and so does the sandbox); passed through as sent.
_MEDIA = {"json": "application/json", "xml": "text/xml"}


def _core_paths(
    read_routes: Iterable[Any],
    write_routes: Iterable[Any],
    params: dict[str, re.Pattern[str]],
    check_routes: Iterable[Any] = (),
) -> dict[str, Any]:
    """Core API lookups from the allow-list: each template, in each format it is served."""
    paths: dict[str, Any] = {}
    query = [
        {
            "name": "api_key",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "passed through to the Core API (part of the cache key)",
        },
        {"name": "company_id", "in": "query", "required": False, "schema": {"type": "string"}},
    ]

    def path_params(path: str) -> list[dict[str, Any]]:
        out = []
        for name in _PLACEHOLDER.findall(path):
            schema: dict[str, Any] = {"type": "string"}
            grammar = params.get(name)
            if grammar is not None:
                schema["pattern"] = f"^{grammar.pattern}$"
            out.append({"name": name, "in": "path", "required": True, "schema": schema})
        return out

    for route in read_routes:
        for path in route.paths():
            fmt = path.rsplit(".", 1)[-1]
            media = _MEDIA.get(fmt, "application/octet-stream")
            op_id = "get_" + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
            paths.setdefault(path, {})["get"] = {
                "summary": f"Core API lookup {path} (cached briefly, coalesced)",
                "operationId": op_id,
                "tags": ["core_api"],
                "parameters": [*path_params(path), *query],
                "responses": {
                    "200": {
                        "description": "the Core API's answer, byte for byte; Link URLs "
                        "point at the gateway",
                        "content": {media: {"schema": {}}},
                    },
                    "404": _error("no such route, or a path parameter has the wrong shape"),
                    "429": _error(
                        "the Core API is rate limiting; retry after Retry-After seconds",
                        {"Retry-After": {"schema": {"type": "integer"}}},
                    ),
                    "500": _error("the gateway failed; see its logs"),
                    **_UPSTREAM_ERRORS,
                    "default": {
                        "description": "the Core API's status and body, unchanged",
                        "content": {media: {"schema": {}}},
                    },
                },
            }
    for route in write_routes:
        for path in route.paths():
            for method in route.methods:
                operations = paths.setdefault(path, {})
                if method.lower() in operations:
                    continue
                operations[method.lower()] = {
                    "summary": f"Core API write {method} {path}: refused unless "
                    "GATEWAY_CORE_API_ALLOW_WRITES=true",
                    "operationId": f"{method.lower()}_"
                    + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_"),
                    "tags": ["core_api"],
                    "parameters": [*path_params(path), *query],
                    "responses": {
                        "405": _error("writes are turned off"),
                        "default": {"description": "the Core API's answer, unchanged"},
                    },
                }
    for route in check_routes:
        for path in route.paths():
            paths.setdefault(path, {})["post"] = {
                "summary": f"Core API check {path}: a POST that only reads (forwarded "
                "whatever GATEWAY_CORE_API_ALLOW_WRITES says; never cached or retried)",
                "operationId": "post_" + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_"),
                "tags": ["core_api"],
                "parameters": path_params(path),
                "responses": {"default": {"description": "the Core API's answer, unchanged"}},
            }
    return paths


def build_spec() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "rtb-gateway",
            "version": __version__,
            "description": "A front door for Retreaver RTB pings and Core API lookups.",
        },
        "paths": {
            **_rtb_paths(),
            **_ops_paths(),
            **_core_paths(READ_ROUTES, WRITE_ROUTES, PARAMS, CHECK_ROUTES),
        },
        "components": {
            "schemas": {
                "Error": ERROR,
                "Reservation": {
                    "type": "object",
                    "description": "Retreaver's RTB answer (uuid, status, inbound_number, ...)",
                    "properties": {
                        "uuid": {"type": "string"},
                        "status": {"type": "string"},
                        "inbound_number": {"type": "string"},
                        "sip_address": {"type": "string"},
                        "expires_at": {"type": "string"},
                        "retreaver_ping_shield": {"type": "boolean"},
                    },
                    "additionalProperties": True,
                },
                "Stats": {
                    "type": "object",
                    "required": ["uptime_s", "windows", "workers", "series", "alerts"],
                    "properties": {
                        "uptime_s": {"type": "number"},
                        "workers": {"type": "integer", "description": "workers added up"},
                        "pid": {"type": "integer", "description": "the worker that answered"},
                        "version": {"type": "string"},
                        "windows": {
                            "type": "object",
                            "description": "'10s' and '60s': route template -> summary",
                            "additionalProperties": {"type": "object"},
                        },
                        "series": {
                            "type": "object",
                            "description": "per route, one value a second over the last "
                            "minute: requests, errors, p50_ms, p99_ms",
                        },
                        "alerts": {
                            "type": "array",
                            "description": "what is wrong now (empty when all is well)",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "level": {"type": "string", "enum": ["warning", "error"]},
                                    "what": {"type": "string"},
                                    "detail": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            }
        },
    }


@functools.cache
def encoded_spec() -> bytes:
    return msgspec.json.encode(build_spec())


async def openapi_endpoint(request: Request) -> Response:
    return Response(encoded_spec(), media_type="application/json")
