"""Reports over HTTP: a 400 naming the bad parameters, and paged rows."""

from __future__ import annotations

import httpx
import pytest

from tests.sandbox.conftest import AUTH

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_invalid_report_is_400_naming_fields(
    shared_sandbox: str, shared_client: httpx.AsyncClient
) -> None:
    response = await shared_client.get(
        f"{shared_sandbox}/api/v1/reports.json?{AUTH}&domain=calls&facet=weekly"
        "&created_at_start=2024-10-28&created_at_end=2024-10-25"
    )
    assert response.status_code == 400
    body = response.json()
    assert isinstance(body["error"], str)
    assert set(body["fields"]) == {"facet", "created_at_end"}


async def test_report_pages(shared_sandbox: str, shared_client: httpx.AsyncClient) -> None:
    base = (
        f"{shared_sandbox}/api/v1/reports.json?{AUTH}&domain=calls&facet=number"
        "&created_at_start=2024-10-01&created_at_end=2024-12-01"
    )
    everything = (await shared_client.get(base + "&per_page=100")).json()
    first = (await shared_client.get(base + "&per_page=5")).json()
    second = (await shared_client.get(base + "&per_page=5&page=2")).json()
    assert first["count"] == second["count"] == 5
    assert first["count_total"] == everything["count_total"] > 10
    assert first["data"] + second["data"] == everything["data"][:10]
