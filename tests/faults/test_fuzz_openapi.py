"""Suite item 9: schemathesis against the gateway's own ``/openapi.json``.

A real gateway process (``serve --sandbox``: both upstreams are the built-in sandbox)
answers hypothesis-generated requests for every operation in the document, bounded per
operation and derandomised so CI runs the same examples every time. Every answer must be
non-5xx and conform to the document (status, content type, headers, body schema).

The other half of item 9, hypothesis properties, lives beside the code it tests: ping
parsing (tests/ping/test_ping_properties.py), phone numbers (tests/ping/test_phone.py), shield
expiry (tests/shield/test_memory_store.py) and rate limiting
(tests/protect/test_ratelimit_properties.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.openapi import build_spec, encoded_spec
from tests.faults.conftest import FIGURES
from tests.support.servers import GatewayProcess

pytestmark = pytest.mark.slow

EXAMPLES = 6  # per operation
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
TALLY = {"operations": set(), "requests": 0, "5xx": 0}


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    gw = GatewayProcess({"GATEWAY_LOG_LEVEL": "warning"}, "--sandbox")
    try:
        gw.wait_ready()
        yield gw.url
    finally:
        gw.stop()
        FIGURES.append(("test_fuzz_openapi", "operations fuzzed", str(len(TALLY["operations"]))))
        FIGURES.append(("test_fuzz_openapi", "requests sent", str(TALLY["requests"])))
        FIGURES.append(("test_fuzz_openapi", "5xx answers", str(TALLY["5xx"])))


# The document the gateway serves at /openapi.json (test_serves_its_document checks
# they are the same bytes), loaded at collection so no server is needed to parametrize.
schema = schemathesis.openapi.from_dict(build_spec())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_openapi_fuzz(case, gateway_url: str) -> None:  # type: ignore[no-untyped-def]
    response = case.call(base_url=gateway_url, timeout=10)
    TALLY["operations"].add(case.operation.label)
    TALLY["requests"] += 1
    TALLY["5xx"] += response.status_code >= 500
    case.validate_response(response, checks=CHECKS)


def test_serves_its_document(gateway_url: str) -> None:
    assert httpx.get(gateway_url + "/openapi.json").content == encoded_spec()
