"""Destination keys stay secret end to end (answers, logs, metrics), and the auctions
file reloads on change and on SIGHUP without dropping a ping, keeping the old auctions
when the new file is invalid."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.auction.conftest import Bid, Buyers, auctions_toml, metric, ping, wait_for
from tests.conftest import MakeGateway
from tests.support.servers import GatewayProcess

KEY_A = "secret-dest-key-aaaa"
KEY_B = "secret-dest-key-bbbb"
AUCTION_KEY = "auction-secret-key"


def auctions(mode: str = "parallel", name: str = "s", key: str = AUCTION_KEY) -> str:
    return auctions_toml(
        [
            {
                "name": name,
                "key": key,
                "mode": mode,
                "budget_ms": 300,
                "destinations": [
                    {"name": "a", "key": KEY_A, "timeout_ms": 100},
                    {"name": "b", "key": KEY_B},
                    {"name": "gone", "key": "k-gone", "upstream": "http://127.0.0.1:9"},
                ],
            }
        ]
    )


def records_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.extend(repr(v) for v in record.__dict__.values())
    return "\n".join(parts)


async def test_keys_never_leave_the_gateway(
    buyers: Buyers, tmp_path: Path, make_gateway: MakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    buyers.bids.update({KEY_A: Bid(payout=5.0, delay_s=0.3), KEY_B: Bid(payout=2.0)})
    path = tmp_path / "auctions.toml"
    path.write_text(auctions())
    texts: list[str] = []
    async with (
        make_gateway(
            rtb_upstream_url=buyers.url, auctions_file=str(path), auctions_reload_s=0.02
        ) as gw,
        httpx.AsyncClient() as client,
    ):
        won = await client.post(f"{gw}/rtbs.json", json=ping(AUCTION_KEY))
        texts.append(str(won.headers) + won.text)
        uuid = won.json()["uuid"]
        for method, body in (
            ("PUT", {"key": AUCTION_KEY, "status": "confirmed"}),
            ("PUT", {"key": AUCTION_KEY, "status": "nope"}),
        ):
            answer = await client.request(method, f"{gw}/rtbs/{uuid}.json", json=body)
            texts.append(str(answer.headers) + answer.text)
        bad = await client.post(f"{gw}/rtbs.json", json={**ping(AUCTION_KEY), "caller_number": "x"})
        texts.append(str(bad.headers) + bad.text)
        # An invalid reload is logged; its error must not quote a key either.
        path.write_text(auctions() + f'\n[[auctions]]\nname = "dup"\nkey = "{KEY_A}"\n')
        await wait_for(
            lambda: metric(client, gw, 'gateway_auction_reloads_total{result="invalid"}')
        )
        late = 'gateway_auction_legs_total{auction="s",destination="a",outcome="upstream_timeout"}'
        await wait_for(lambda: metric(client, gw, late))
        texts.append((await client.get(f"{gw}/metrics")).text)
        texts.append((await client.get(f"{gw}/stats")).text)
    assert won.headers["x-auction-winner"] == "b"
    texts.append(records_text(caplog))
    everything = "\n".join(texts)
    assert "auctions file not reloaded" in everything
    for secret in (KEY_A, KEY_B, "k-gone"):
        assert secret not in everything
    # The auction key is the publisher's own; it is still never logged or measured.
    assert AUCTION_KEY not in texts[-1] + texts[-2] + texts[-3]


async def test_the_file_reloads_on_change_and_an_invalid_one_keeps_the_old(
    buyers: Buyers, tmp_path: Path, make_gateway: MakeGateway
) -> None:
    buyers.bids.update({KEY_A: Bid(payout=5.0), KEY_B: Bid(payout=2.0)})
    path = tmp_path / "auctions.toml"
    path.write_text(auctions(name="old", key="auction-old"))
    async with (
        make_gateway(
            rtb_upstream_url=buyers.url, auctions_file=str(path), auctions_reload_s=0.02
        ) as gw,
        httpx.AsyncClient() as client,
    ):
        first = await client.post(f"{gw}/rtbs.json", json=ping("auction-old"))
        assert first.headers["x-auction-winner"] == "a"

        # Pings keep flowing while the file is swapped underneath them.
        async def keep_pinging() -> list[int]:
            statuses = []
            for n in range(40):
                resp = await client.post(
                    f"{gw}/rtbs.json", json=ping("auction-old", caller=f"+1855848{n:04d}")
                )
                statuses.append(resp.status_code)
            return statuses

        pinging = asyncio.create_task(keep_pinging())
        path.write_text(
            auctions(name="old", key="auction-old") + auctions(name="new", key="auction-new")
        )
        await wait_for(lambda: metric(client, gw, 'gateway_auction_reloads_total{result="ok"}'))
        assert set(await pinging) == {200}
        new = await client.post(f"{gw}/rtbs.json", json=ping("auction-new"))
        assert new.headers["x-auction-winner"] == "a"

        path.write_text("this is not toml = = =")
        await wait_for(
            lambda: metric(client, gw, 'gateway_auction_reloads_total{result="invalid"}')
        )
        kept = await client.post(f"{gw}/rtbs.json", json=ping("auction-new", caller="+18005550111"))
        assert kept.headers["x-auction-winner"] == "a"


def read_until(proc: GatewayProcess, words: str, timeout_s: float = 20.0) -> str:
    """The gateway's log (stderr) up to and including the first line holding ``words``.

    Read from the descriptor itself: a buffered ``readline`` may pull several lines in
    at once and leave ``select`` waiting for data that already arrived."""
    stream = proc.proc.stderr
    assert stream is not None
    fd = stream.fileno()
    seen = b""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        seen += chunk
        if words.encode() in seen:
            return seen.decode(errors="replace")
    raise AssertionError(f"no log line with {words!r}; got {seen[-500:]!r}")


@pytest.mark.slow
def test_sighup_reloads_a_running_gateway(tmp_path: Path) -> None:
    path = tmp_path / "auctions.toml"
    path.write_text(auctions(name="one", key="auction-one"))
    proc = GatewayProcess(
        {
            "GATEWAY_AUCTIONS_FILE": str(path),
            "GATEWAY_AUCTIONS_RELOAD_S": "0",  # only the signal reloads
            "GATEWAY_RTB_UPSTREAM_URL": "http://127.0.0.1:9",
        }
    )
    try:
        proc.wait_ready()
        probe = {"publisher_id": "p", "caller_number": "+18558485518", "key": "auction-two"}
        before = httpx.post(f"{proc.url}/rtbs.json", json=probe)
        path.write_text(auctions(name="two", key="auction-two"))
        proc.signal(signal.SIGHUP)
        logged = read_until(proc, "auctions reloaded")
        after = httpx.post(f"{proc.url}/rtbs.json", json=probe)
        # Before: a plain ping to the (unreachable) default upstream; after: an auction,
        # whose destinations are all down, so a no-bid rather than a 502.
        assert before.status_code == 502
        assert (after.status_code, after.headers["x-outcome"]) == (200, "no_bid")
        assert proc.proc.poll() is None  # SIGHUP did not kill it
    finally:
        _out, err = proc.stop()
    for secret in (KEY_A, KEY_B, "k-gone"):
        assert secret not in logged + err
