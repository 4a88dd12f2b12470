"""Property tests: any bytes in -> a valid Ping or a 4xx GatewayError, never anything else."""

from __future__ import annotations

import re

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.ping.parse import _CONTROL, MAX_TAGS, parse_ping
from gateway.ping.requests import Ping

CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "application/x-www-form-urlencoded", "text/plain", ""]
)
TAG_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _check(ping: Ping) -> None:
    assert re.fullmatch(r"\+[1-9]\d{6,14}", ping.caller_number)
    assert ping.key
    assert ping.publisher_id.strip()
    assert len(ping.tags) <= MAX_TAGS
    for name, value in ping.tags.items():
        assert TAG_NAME.fullmatch(name)
        assert len(value) <= 1024
        assert not re.search(r"[\x00-\x1f\x7f]", value)


@settings(max_examples=300)
@given(query=st.binary(max_size=300), body=st.binary(max_size=300), ctype=CONTENT_TYPES)
def test_arbitrary_bytes(query: bytes, body: bytes, ctype: str | None) -> None:
    try:
        ping = parse_ping(query, body, ctype)
    except GatewayError as exc:
        assert 400 <= exc.status < 500
        assert msgspec.json.decode(exc.body())["error"]
        return
    _check(ping)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300)
@given(
    extra=st.dictionaries(st.text(max_size=70), JSON_VALUES, max_size=8),
    caller=st.one_of(st.text(max_size=20), st.integers(), st.sampled_from(["+18558485518"])),
)
def test_arbitrary_json_objects(extra: dict[str, object], caller: object) -> None:
    doc = {"key": "k1", "publisher_id": "p", "caller_number": caller, **extra}
    try:
        ping = parse_ping(b"", msgspec.json.encode(doc), "application/json")
    except GatewayError as exc:
        assert exc.status in (400, 422)
        return
    _check(ping)


def test_every_control_character_is_unprintable() -> None:
    """tags_of skips the control-character search for printable values: that is only
    right while every character the search finds is one str.isprintable refuses."""
    found = [c for c in map(chr, range(0x110000)) if _CONTROL.match(c)]
    assert len(found) == 0x20 + 0x21 + 2
    assert not [c for c in found if c.isprintable()]
