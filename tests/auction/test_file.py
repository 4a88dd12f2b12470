"""The auctions file: what is accepted, and every refusal naming auction, destination
and field without ever quoting a key (also through ``gateway check-config``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.auction.file import AuctionsFileError, parse_auctions
from tests.auction.conftest import auctions_toml

DEFAULT = "https://rtb.retreaver.com"
SECRET_A = "dest-key-alpha-0001"
SECRET_B = "dest-key-bravo-0002"


def one(**auction: Any) -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "name": "main",
        "key": "auction-main",
        "budget_ms": 500,
        "destinations": [
            {"name": "a", "key": SECRET_A},
            {"name": "b", "key": SECRET_B},
        ],
    }
    base.update(auction)
    return [base]


def parse(auctions: list[dict[str, Any]], env: dict[str, str] | None = None) -> Any:
    return parse_auctions(auctions_toml(auctions).encode(), env or {}, DEFAULT)


def test_defaults_and_priority_order() -> None:
    (auction,) = parse(
        one(
            destinations=[
                {"name": "late", "key": SECRET_A, "priority": 9, "floor": 2.5},
                {"name": "first", "key": SECRET_B, "priority": -1, "upstream": "http://x:81/"},
            ]
        )
    )
    assert auction.mode == "waterfall"
    assert [d.name for d in auction.destinations] == ["first", "late"]
    first, late = auction.destinations
    assert (first.upstream, first.timeout_ms, first.floor) == ("http://x:81", 500, 0.0)
    assert (late.upstream, late.floor) == (DEFAULT, 2.5)
    assert late.key.reveal() == SECRET_A
    assert SECRET_A not in repr(auction)


def test_json_and_key_env() -> None:
    data = {"auctions": one(destinations=[{"name": "a", "key_env": "KEY_A"}])}
    (auction,) = parse_auctions(
        json.dumps(data).encode(), {"KEY_A": SECRET_A}, DEFAULT, json_format=True
    )
    assert auction.destinations[0].key.reveal() == SECRET_A


BAD: list[tuple[str, list[dict[str, Any]], dict[str, str], tuple[str, ...]]] = [
    (
        "duplicate destination key",
        one(destinations=[{"name": "a", "key": SECRET_A}, {"name": "b", "key": SECRET_A}]),
        {},
        ("auction 'main'", "destination 'b'", "field `key`", "same key"),
    ),
    (
        "auction key equal to a destination key",
        one(key=SECRET_B),
        {},
        ("auction 'main'", "destination 'b'", "field `key`", "equals the key of auction"),
    ),
    (
        "unknown mode",
        one(mode="ring-tree"),
        {},
        ("auction 'main'", "field `mode`"),
    ),
    (
        "negative budget",
        one(budget_ms=-5),
        {},
        ("auction 'main'", "field `budget_ms`", "> 0"),
    ),
    (
        "negative timeout",
        one(destinations=[{"name": "a", "key": SECRET_A, "timeout_ms": -1}]),
        {},
        ("destination 'a'", "field `timeout_ms`"),
    ),
    (
        "negative floor",
        one(destinations=[{"name": "a", "key": SECRET_A, "floor": -0.5}]),
        {},
        ("destination 'a'", "field `floor`"),
    ),
    (
        "upstream scheme",
        one(destinations=[{"name": "a", "key": SECRET_A, "upstream": "ftp://rtb.example"}]),
        {},
        ("auction 'main'", "destination 'a'", "field `upstream`", "http://"),
    ),
    (
        "duplicate destination name",
        one(destinations=[{"name": "a", "key": SECRET_A}, {"name": "a", "key": SECRET_B}]),
        {},
        ("destination 'a'", "field `name`"),
    ),
    (
        "duplicate auction name",
        [*one(), *one(key="auction-other")],
        {},
        ("auction 'main'", "field `name`"),
    ),
    (
        "duplicate auction key",
        [*one(), *one(name="other")],
        {},
        ("auction 'other'", "field `key`", "auction 'main' has the same key"),
    ),
    (
        "unknown field",
        one(destinations=[{"name": "a", "key": SECRET_A, "flor": 3}]),
        {},
        ("destination 'a'", "field `flor`", "not a known field"),
    ),
    (
        "key_env unset",
        one(destinations=[{"name": "a", "key_env": "NOPE"}]),
        {},
        ("destination 'a'", "field `key_env`", "NOPE is not set"),
    ),
    (
        "key and key_env both",
        one(destinations=[{"name": "a", "key": SECRET_A, "key_env": "KEY_A"}]),
        {"KEY_A": SECRET_B},
        ("destination 'a'", "field `key`", "exactly one"),
    ),
    (
        "malformed key",
        one(destinations=[{"name": "a", "key": SECRET_A + " x"}]),
        {},
        ("destination 'a'", "field `key`"),
    ),
    (
        "no destinations",
        one(destinations=[]),
        {},
        ("auction 'main'", "field `destinations`"),
    ),
]


@pytest.mark.parametrize(
    ("auctions", "env", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_refusals_name_the_place_and_never_a_key(
    auctions: list[dict[str, Any]], env: dict[str, str], words: tuple[str, ...]
) -> None:
    with pytest.raises(AuctionsFileError) as caught:
        parse(auctions, env)
    message = str(caught.value)
    assert message.startswith("GATEWAY_AUCTIONS_FILE: ")
    for word in words:
        assert word in message
    assert SECRET_A not in message
    assert SECRET_B not in message


def test_syntax_errors_give_a_place_not_the_text() -> None:
    raw = f'[[auctions]]\nname = "x"\nkey = {SECRET_A}\n'.encode()  # unquoted: invalid
    with pytest.raises(AuctionsFileError) as caught:
        parse_auctions(raw, {}, DEFAULT)
    assert "line 3" in str(caught.value)
    assert SECRET_A not in str(caught.value)


def run_check_config(path: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check-config"],
        env={**clean, "GATEWAY_AUCTIONS_FILE": path, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_shows_auctions_masked_and_refuses_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        auctions_toml(
            one(destinations=[{"name": "a", "key_env": "KEY_A"}, {"name": "b", "key": SECRET_B}])
        )
    )
    ok = run_check_config(str(good), KEY_A=SECRET_A)
    assert ok.returncode == 0, ok.stderr
    shown = json.loads(ok.stdout)
    assert shown["auctions"][0]["destinations"][0] == {
        "name": "a",
        "key": "***",
        "upstream": DEFAULT,
        "floor": 0.0,
        "timeout_ms": 500,
        "priority": 0,
    }
    bad = tmp_path / "bad.toml"
    bad.write_text(auctions_toml(one(key=SECRET_B)))
    refused = run_check_config(str(bad), KEY_A=SECRET_A)
    assert refused.returncode == 2
    assert "GATEWAY_AUCTIONS_FILE" in refused.stderr
    assert "destination 'b'" in refused.stderr
    for output in (ok.stdout + ok.stderr, refused.stdout + refused.stderr):
        assert SECRET_A not in output
        assert SECRET_B not in output
        assert "auction-main" not in output


def test_the_example_file_is_valid() -> None:
    example = Path(__file__).parents[2] / "docs" / "pages" / "examples" / "auctions.toml"
    auctions = parse_auctions(example.read_bytes(), {}, DEFAULT)
    assert {a.mode for a in auctions} == {"waterfall", "parallel"}
