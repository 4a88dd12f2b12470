"""The ledger as an operator meets it: check-config, the first-start line, /stats."""

from __future__ import annotations

import httpx
import pytest

from gateway.config import ConfigError, Secret, Settings
from gateway.observe.banner import fields
from tests.conftest import RTB_KEY, MakeGateway
from tests.ledger.helpers import wait_rows
from tests.test_config import _cli

PG_URL = "postgresql://gateway:pg-pa55word@db.internal:5432/ledger"


def test_check_config_masks_the_ledger_url_and_the_secrets() -> None:
    env = {
        "GATEWAY_LEDGER_URL": PG_URL,
        "GATEWAY_LEDGER_SECRET": "ledger-secret-0123456789",
        "GATEWAY_ADMIN_TOKEN": "admin-token-0123456789",
    }
    result = _cli("check-config", env=env)
    assert result.returncode == 0, result.stderr
    printed = result.stdout + result.stderr
    assert "postgresql://gateway:***@db.internal:5432/ledger" in result.stdout
    for secret in ("pg-pa55word", "ledger-secret-0123456789", "admin-token-0123456789"):
        assert secret not in printed
    assert '"GATEWAY_LEDGER_QUEUE_MAX": 100000' in result.stdout
    assert "GATEWAY_LEDGER_SECRET is unset" not in result.stderr


def test_check_config_says_when_digests_hold_only_for_one_run() -> None:
    result = _cli("check-config", env={})
    assert result.returncode == 0
    assert "GATEWAY_LEDGER_SECRET is unset" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_LEDGER_URL", "mysql://db/ledger"),
        ("GATEWAY_LEDGER_URL", "postgresql:///ledger"),
        ("GATEWAY_LEDGER_QUEUE_MAX", "0"),
        ("GATEWAY_LEDGER_QUEUE_MAX", "lots"),
        ("GATEWAY_LEDGER_MEMORY_MAX_EVENTS", "-5"),
        ("GATEWAY_LEDGER_RETENTION_DAYS", "0"),
        ("GATEWAY_LEDGER_TIMEOUT_MS", "0"),
        ("GATEWAY_LEDGER_SECRET", "short"),
        ("GATEWAY_ADMIN_TOKEN", "short"),
        ("GATEWAY_SUB_ID_TAG", "sub id"),
    ],
)
def test_bad_ledger_settings_name_their_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    if variable in ("GATEWAY_LEDGER_SECRET", "GATEWAY_ADMIN_TOKEN"):
        assert value not in str(caught.value)  # a secret is never echoed


def test_the_first_start_line_says_where_the_ledger_is() -> None:
    assert fields(Settings.from_env({}))["ledger"] == "in-process"
    pg = Settings.from_env({}, ledger_url=Secret(PG_URL))
    assert fields(pg)["ledger"] == "postgresql://gateway:***@db.internal:5432/ledger"
    sandbox = Settings.from_env({}, ledger_url=Secret(PG_URL), sandbox=True)
    assert fields(sandbox)["ledger"] == "in-process"


async def test_stats_show_the_queue_and_the_writer(
    make_gateway: MakeGateway, sandbox_url: str, client: httpx.AsyncClient
) -> None:
    ping = {"key": RTB_KEY, "publisher_id": "p", "caller_number": "+18558485518"}
    async with make_gateway(rtb_upstream_url=sandbox_url) as gw:
        for _ in range(3):
            await client.post(f"{gw}/rtbs.json", json=ping)
        await wait_rows(client, gw, 3)
        ledger = (await client.get(f"{gw}/stats")).json()["ledger"]
        metrics = (await client.get(f"{gw}/metrics")).text
    assert ledger["store"] == "in-process"
    assert ledger["queue_depth"] == 0
    assert ledger["queue_max"] == 100_000
    assert ledger["written_total"] == 3
    assert ledger["dropped_total"] == 0
    assert "written_per_s" in ledger
    assert "gateway_ledger_events_written_total 3.0" in metrics
    assert "gateway_ledger_events_dropped_total 0.0" in metrics
    assert "gateway_ledger_queue_depth 0.0" in metrics
