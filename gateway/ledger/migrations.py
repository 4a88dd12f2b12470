"""The ledger's schema, migrated at start-up from the SQL files shipped beside this module.

``migrations/NNNN_name.sql`` are applied in order, each once, recorded in
``ledger_schema_version``. The whole run holds a transaction-scoped advisory lock, so
when several replicas start together one migrates and the others wait, then find
nothing left to do. A new change is a new file, never an edit of an applied one.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

# pg_advisory_xact_lock key: "rtbgw-ledger" folded into a bigint, fixed forever.
LOCK_ID = 0x7274_6267_776C_6467
_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every shipped migration, in order."""
    found = []
    for entry in resources.files("gateway.ledger").joinpath("migrations").iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(conn: Any, timeout_s: float) -> list[str]:
    """Apply what is missing; returns the names applied now (empty when up to date)."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID, timeout=timeout_s)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS ledger_schema_version ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())",
            timeout=timeout_s,
        )
        rows = await conn.fetch("SELECT version FROM ledger_schema_version", timeout=timeout_s)
        done = {row["version"] for row in rows}
        for version, name, sql in migrations():
            if version in done:
                continue
            await conn.execute(sql, timeout=timeout_s)
            await conn.execute(
                "INSERT INTO ledger_schema_version (version, name) VALUES ($1, $2)",
                version,
                name,
                timeout=timeout_s,
            )
            applied_now.append(name)
    return applied_now
