"""Shield keys: scope, hashing, and no secret or phone number in a key name."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gateway.ping.requests import Ping
from gateway.shield.keys import index_digest, ping_digest, shield_digest
from gateway.shield.scripts import index_key as _index_key
from gateway.shield.scripts import shield_keys as _keys

KEY = "7fc40342-f0a0-4e8f-bf09-b3887eedcb4a"


def test_key_scope_ignores_publisher_and_tags() -> None:
    a = Ping(KEY, "pub_a", "+18558485518", tags={"zip": "12344"})
    b = Ping(KEY, "pub_b", "+18558485518", publisher_field="source_id")
    assert ping_digest("key", a) == ping_digest("key", b)


def test_publisher_scope_separates_publishers() -> None:
    a = Ping(KEY, "pub_a", "+18558485518")
    b = Ping(KEY, "pub_b", "+18558485518")
    assert ping_digest("publisher", a) != ping_digest("publisher", b)
    assert ping_digest("publisher", a) != ping_digest("key", a)


def test_different_callers_and_keys_differ() -> None:
    base = shield_digest("key", KEY, "p", "+18558485518")
    assert base != shield_digest("key", KEY, "p", "+18558485519")
    assert base != shield_digest("key", KEY + "x", "p", "+18558485518")


def test_redis_key_names_hold_neither_key_nor_caller() -> None:
    digest = shield_digest("publisher", KEY, "retreaver_pub", "+18558485518")
    names = [*_keys(digest), _index_key(index_digest(KEY, "C6E4CE37-9B49-46AF-BD8E-16CB7753499D"))]
    for name in names:
        assert KEY not in name
        assert "8558485518" not in name
        assert "retreaver_pub" not in name
        # One hash tag per name: the answer, its lease, relay and waiters flag share a slot.
        assert re.fullmatch(r"rtbgw:\{[0-9a-f]{32}\}:[alowu]", name)
    assert len({n.split("}")[0] for n in names[:4]}) == 1


def test_index_digest_ignores_uuid_case() -> None:
    upper = index_digest(KEY, "C6E4CE37-9B49-46AF-BD8E-16CB7753499D")
    assert upper == index_digest(KEY, "c6e4ce37-9b49-46af-bd8e-16cb7753499d")
    assert upper != index_digest("other", "c6e4ce37-9b49-46af-bd8e-16cb7753499d")


@given(st.text(max_size=8), st.text(max_size=8), st.text(max_size=8), st.text(max_size=8))
def test_length_prefixing_makes_field_boundaries_unambiguous(
    a: str, b: str, c: str, d: str
) -> None:
    # ("ab", "c") and ("a", "bc") must never collide, whatever the fields hold.
    if (a, b) != (c, d):
        assert shield_digest("key", a, "", b) != shield_digest("key", c, "", d)
