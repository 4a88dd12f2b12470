"""``gateway calls export`` end to end: the CLI as a child process paging through a real
gateway (and straight to the sandbox), and resumption after an interrupted run."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.cli.calls import run_export
from gateway.cli.export_fetch import parse_links
from gateway.cli.export_state import ExportError, ExportOptions
from gateway.sandbox.api import CoreApiState
from gateway.sandbox.api.seeding import seed
from tests.coreapi.conftest import KEY, ServeGateway

SINCE, UNTIL = "2024-11-01", "2024-11-06"
_calls = seed().by_company[1].calls
EXPECTED_UUIDS = [c.uuid for c in sorted(_calls, key=lambda c: (c.created_at, c.uuid))]


async def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "RETREAVER_"))}
    full_env.update({"RETREAVER_API_KEY": KEY, "RETREAVER_COMPANY_ID": "1", **(env or {})})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "calls",
        "export",
        *args,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out, err


async def test_export_through_the_gateway_as_ndjson_on_stdout(
    serve_gateway: ServeGateway, core: CoreApiState
) -> None:
    async with serve_gateway() as (url, _):
        code, out, err = await _cli("--gateway", url, "--since", SINCE, "--until", UNTIL)
    assert code == 0, err.decode()
    records = [msgspec.json.decode(line) for line in out.splitlines()]
    assert [r["uuid"] for r in records] == EXPECTED_UUIDS
    assert b"3/3 pages" in err  # the progress line (stderr is not a terminal here)
    assert b"60 calls" in err
    assert KEY.encode() not in err
    queries = [r["query"] for r in core.received]
    assert len(queries) == 3
    assert all("created_at_start=2024-11-01T00%3A00%3A00%2B00%3A00" in q for q in queries)
    assert all("sort_by=created_at&order=asc" in q for q in queries)


async def test_export_direct_to_the_core_api_as_csv_with_bounded_concurrency(
    sandbox: tuple[str, Any], core: CoreApiState, tmp_path: Path
) -> None:
    output = tmp_path / "calls.csv"
    code, _, err = await _cli(
        "--direct",
        "--since",
        SINCE,
        "--until",
        UNTIL,
        "--format",
        "csv",
        "--output",
        str(output),
        "--concurrency",
        "2",
        env={"GATEWAY_CORE_API_URL": sandbox[0]},
    )
    assert code == 0, err.decode()
    rows = list(csv.DictReader(io.StringIO(output.read_text())))
    assert [row["uuid"] for row in rows] == EXPECTED_UUIDS
    assert rows[0]["caller"].startswith("+")
    assert core.max_in_flight <= 2
    state = msgspec.json.decode((tmp_path / "calls.csv.state.json").read_bytes())
    assert state["complete"] is True
    assert state["pages_written"] == 3
    assert KEY not in (tmp_path / "calls.csv.state.json").read_text()


async def test_an_interrupted_export_resumes_where_it_stopped(
    serve_gateway: ServeGateway, core: CoreApiState, tmp_path: Path
) -> None:
    output = tmp_path / "calls.ndjson"
    async with serve_gateway() as (url, _):

        def options(resume: bool) -> ExportOptions:
            return ExportOptions(
                since=SINCE,
                until=UNTIL,
                api_key=KEY,
                company_id="1",
                base_url=url,
                output=output,
                concurrency=1,
                resume=resume,
                quiet=True,
            )

        # Page 1 goes through; page 2 is held at the upstream; then the export dies.
        core.hold()
        task = asyncio.create_task(run_export(options(False)))
        await core.wait_in_flight(1)
        core.release()
        core.hold()
        async with asyncio.timeout(30):
            while len(core.received) < 2:
                await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        core.release()
        state = msgspec.json.decode((tmp_path / "calls.ndjson.state.json").read_bytes())
        assert (state["pages_written"], state["complete"]) == (1, False)
        # A crash mid-write leaves a torn line after the recorded offset.
        with output.open("ab") as torn:
            torn.write(b'{"uuid": "torn')

        result = await run_export(options(True))
        again = await run_export(options(True))  # a finished export is not redone

    lines = output.read_bytes().splitlines()
    assert [msgspec.json.decode(line)["uuid"] for line in lines] == EXPECTED_UUIDS
    assert (result.pages, result.records) == (3, 60)
    assert (again.pages, again.records) == (3, 60)
    pages_asked = [r["query"].rsplit("page=", 1)[-1] for r in core.received]
    # The resumed page 2 came from the gateway (the abandoned lookup finished and was cached).
    assert pages_asked == ["1", "2", "3"]


async def test_a_state_file_of_another_export_is_refused(
    serve_gateway: ServeGateway, tmp_path: Path
) -> None:
    output = tmp_path / "calls.ndjson"
    async with serve_gateway() as (url, _):
        base = {"api_key": KEY, "company_id": "1", "base_url": url, "output": output}
        await run_export(ExportOptions(since=SINCE, until=UNTIL, quiet=True, **base))
        with pytest.raises(ExportError, match="different export"):
            await run_export(
                ExportOptions(since=SINCE, until="2024-11-03", resume=True, quiet=True, **base)
            )


async def test_a_refused_key_stops_the_export_with_a_reason(
    serve_gateway: ServeGateway, tmp_path: Path
) -> None:
    async with serve_gateway() as (url, _):
        code, _, err = await _cli(
            "--gateway",
            url,
            "--since",
            SINCE,
            "--until",
            UNTIL,
            "--output",
            str(tmp_path / "x.ndjson"),
            env={"RETREAVER_API_KEY": "wrongwrongwrong"},
        )
    assert code == 1
    assert b"HTTP 401" in err
    assert b"wrongwrongwrong" not in err


def test_parse_links() -> None:
    value = (
        '<http://gw/calls.json?page=1>; rel="first", <http://gw/calls.json?page=3>; rel="last",'
        ' <http://gw/calls.json?page=2>; rel="next"'
    )
    assert parse_links(value) == {
        "first": "http://gw/calls.json?page=1",
        "last": "http://gw/calls.json?page=3",
        "next": "http://gw/calls.json?page=2",
    }
    assert parse_links(None) == {}
