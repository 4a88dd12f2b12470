"""/openapi.json describes exactly the routes the app serves, with their parameters."""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.routing import Route

from gateway.app import create_app
from gateway.config import Settings
from gateway.openapi import build_spec
from tests.support.servers import serve_app

METHODS = {"get", "put", "post", "patch", "delete"}


def _served(app: Any) -> dict[str, set[str]]:
    served: dict[str, set[str]] = {}
    for route in app.routes:
        if isinstance(route, Route):
            methods = {m.lower() for m in (route.methods or ())} - {"head"}
            served.setdefault(route.path, set()).update(methods)
    return served


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_route_is_described_and_nothing_else() -> None:
    app = create_app(Settings.from_env({}))
    spec = build_spec()
    described = {path: {m for m in ops if m in METHODS} for path, ops in spec["paths"].items()}
    assert described == _served(app)


def test_parameters_match_the_templates_and_refs_resolve() -> None:
    spec = build_spec()
    schemas = spec["components"]["schemas"]
    for ref in _refs(spec):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas
    operation_ids = []
    for path, ops in spec["paths"].items():
        placeholders = set(re.findall(r"\{(\w+)\}", path))
        for method, op in ops.items():
            in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert in_path == placeholders, (path, method)
            assert op["responses"], (path, method)
            operation_ids.append(op["operationId"])
            for status, response in op["responses"].items():
                assert status == "default" or re.fullmatch(r"[1-5]\d\d", status)
                assert "description" in response
    assert len(operation_ids) == len(set(operation_ids))
    ping = spec["paths"]["/rtbs.json"]["post"]
    assert {p["name"] for p in ping["parameters"]} >= {"key", "publisher_id", "caller_number"}
    assert {"400", "413", "415", "422", "502", "504"} <= set(ping["responses"])


async def test_served_document_and_documented_answers(sandbox_url: str) -> None:
    """The gateway's own answers use statuses and shapes the document declares."""
    app = create_app(Settings.from_env({}, rtb_upstream_url=sandbox_url))
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as c:
        spec = (await c.get("/openapi.json")).json()
        assert spec == build_spec()
        probes = [
            ("post", "/rtbs.json", {"params": {"key": "k"}}),
            (
                "post",
                "/rtbs.json",
                {"content": b"{", "headers": {"content-type": "application/json"}},
            ),
            ("post", "/rtbs.json", {"content": b"x", "headers": {"content-type": "text/plain"}}),
            ("put", "/rtbs/{uuid}.json", {"params": {"status": "confirmed"}}),
            ("get", "/healthz", {}),
            ("get", "/readyz", {}),
            ("get", "/stats", {}),
        ]
        for method, template, kw in probes:
            path = template.replace("{uuid}", "c6e4ce37-9b49-46af-bd8e-16cb7753499d")
            r = await c.request(method.upper(), path, **kw)
            responses = spec["paths"][template][method]["responses"]
            assert str(r.status_code) in responses, (method, path, r.status_code)
            if r.status_code >= 400:
                body = r.json()
                assert isinstance(body["error"], str)
                assert set(body) <= set(spec["components"]["schemas"]["Error"]["properties"])
