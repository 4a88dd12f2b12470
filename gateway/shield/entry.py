"""What the shield stores, and when an upstream answer may be stored at all.

Only a reservation is worth repeating: a 2xx JSON object whose ``status`` is
``reserved`` or ``confirmed`` and whose ``expires_at`` lies in the future. Its lifetime in
the store is ``expires_at - now``, capped by ``GATEWAY_SHIELD_MAX_TTL_S``; errors,
non-2xx answers, any other ``status`` (``no-target``, even one carrying an
``expires_at``) and past or unreadable ``expires_at`` are never stored, so the next ping
asks the upstream again. The status is checked rather than inferred from ``expires_at``:
repeating a ``no-target`` would keep a caller away from buyers for the whole window.

The shielded copy is built once, when storing: the upstream's bytes with
``"retreaver_ping_shield": true`` spliced in before the closing brace, exactly as
Retreaver's own Ping Shield answers a repeat. Splicing keeps every other byte as the
upstream sent it (number formatting, key order); a hit then returns stored bytes with no
JSON work at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from gateway.wire.answer import UpstreamAnswer

SHIELD_FIELD = "retreaver_ping_shield"
# The only statuses a repeat may be told again: a live reservation.
SHIELDED_STATUSES = frozenset({"reserved", "confirmed"})
_FIELD_JSON = b'"retreaver_ping_shield":true}'

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class Entry(msgspec.Struct, frozen=True, gc=False):
    """A stored reservation: the answer repeats get, until ``expires_ms`` (epoch ms).

    A msgspec struct rather than a frozen dataclass: one is built per forwarded ping
    and per hit, and a frozen dataclass's ``__init__`` (``object.__setattr__`` per
    field) costs ten times as much. It holds only an answer and plain values, so it can
    never be part of a reference cycle: the cycle collector need not track it.
    """

    answer: UpstreamAnswer
    expires_ms: int
    uuid: str


# How stores keep an entry in process: a flat tuple of str/bytes/int. CPython stops
# tracking such tuples in its cycle collector, so a store of a million entries adds
# nothing to a full collection; as objects (Entry -> UpstreamAnswer) they made every
# full collection walk millions of objects, a pause of tens of ms or more on the ping
# path (seen as the forward path's p99 tail in loadtests/bench).
Packed = tuple[int, bytes, str, int, str]


def pack(entry: Entry) -> Packed:
    answer = entry.answer
    return (answer.status, answer.body, answer.content_type, entry.expires_ms, entry.uuid)


def unpack(packed: Packed) -> Entry:
    status, body, content_type, expires_ms, uuid = packed
    return Entry(UpstreamAnswer(status, body, content_type), expires_ms, uuid)


def parse_expires_at(value: Any) -> float | None:
    """``expires_at`` as epoch seconds; ``None`` when it is not an ISO 8601 timestamp.

    Retreaver writes ``2024-10-28T12:08:49.880Z``; a timestamp without a zone is read as
    UTC, which is what Retreaver's API uses throughout.
    """
    if not isinstance(value, str) or not 10 <= len(value) <= 64:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def decode_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def shielded_body(body: bytes, data: dict[str, Any]) -> bytes:
    """``body`` (a JSON object, already decoded as ``data``) plus the shield field."""
    if SHIELD_FIELD in data:
        return _encoder.encode({**data, SHIELD_FIELD: True})
    inner = body.rstrip()[:-1].rstrip()
    if inner.endswith(b"{"):
        return inner + _FIELD_JSON
    return inner + b"," + _FIELD_JSON


def make_entry(answer: UpstreamAnswer, now_s: float, max_ttl_s: float) -> Entry | None:
    """The entry to store for ``answer``, or ``None`` when it must not be stored."""
    if not answer.ok:
        return None
    data = decode_object(answer.body)
    if data is None or data.get("status") not in SHIELDED_STATUSES:
        return None
    expires_at = parse_expires_at(data.get("expires_at"))
    if expires_at is None or expires_at <= now_s:
        return None
    expires_ms = int(min(expires_at, now_s + max_ttl_s) * 1000)
    if expires_ms <= int(now_s * 1000):
        return None
    uuid = data.get("uuid")
    shielded = UpstreamAnswer(answer.status, shielded_body(answer.body, data), answer.content_type)
    return Entry(shielded, expires_ms, uuid.lower() if isinstance(uuid, str) else "")


def confirmed_answer(answer: UpstreamAnswer) -> UpstreamAnswer | None:
    """What repeats should get after a confirmation answered ``answer``.

    A confirmed reservation replaces the stored copy (so repeats say ``confirmed``). Any
    other 2xx answer (``{"uuid": ..., "status": "no-target"}`` when caps filled up
    meanwhile) means the reservation is gone: ``None``, the stored copy is dropped and
    the caller's next ping is forwarded again rather than told about a dead reservation.
    """
    data = decode_object(answer.body) if answer.ok else None
    if data is None or data.get("status") != "confirmed":
        return None
    return UpstreamAnswer(answer.status, shielded_body(answer.body, data), answer.content_type)
