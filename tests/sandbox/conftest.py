"""Shared bits for the sandbox's own tests: the seeded data as the sandbox has it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from gateway.sandbox.api.data import CompanyData
from gateway.sandbox.api.seeding import seed
from gateway.sandbox.asgi import create_sandbox_app
from tests.support.servers import serve_app

KEY = "woofwoofwoof"
AUTH = f"api_key={KEY}&company_id=1"
SEEDED = seed()
C1: CompanyData = SEEDED.by_company[1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_sandbox() -> AsyncIterator[str]:
    """One sandbox for a whole module of read-only tests (its tests use the module's loop)."""
    async with serve_app(create_sandbox_app()) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


def parse_xml(body: bytes) -> ET.Element:
    return ET.fromstring(body)  # noqa: S314 -- the sandbox's own output, not untrusted input
