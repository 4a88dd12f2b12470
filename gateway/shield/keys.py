"""Shield keys: which pings count as "the same caller", as opaque digests.

Retreaver's own Ping Shield is per (postback key, caller); ``GATEWAY_SHIELD_SCOPE=
publisher`` narrows it to (key, publisher, caller). Either way the store only ever sees a
BLAKE2b digest, so no RTB key (a secret: whoever has it can bid) and no phone number ever
appears in a Redis key name, a ``MONITOR`` stream or a memory dump of key names. Parts are
length-prefixed before hashing, so no choice of field values can make two different
tuples hash alike.

Redis key names wrap the digest in a hash tag (``{...}``): an answer, its lease, the
relayed failure and the waiters flag all land in one Redis Cluster slot, which is what
lets one Lua script touch them together.
"""

from __future__ import annotations

from hashlib import blake2b

from gateway.ping.requests import Ping

_SHIELD_PERSON = b"rtbgw-shield-v1"
_INDEX_PERSON = b"rtbgw-uuid-v1"


def _digest(person: bytes, *parts: str) -> str:
    h = blake2b(digest_size=16, person=person)
    for part in parts:
        raw = part.encode("utf-8")
        h.update(b"%d:" % len(raw))
        h.update(raw)
    return h.hexdigest()


def shield_digest(scope: str, rtb_key: str, publisher_id: str, caller_number: str) -> str:
    """The shield key of a ping: 32 hex characters, the same on every replica."""
    if scope == "publisher":
        return _digest(_SHIELD_PERSON, "publisher", rtb_key, publisher_id, caller_number)
    return _digest(_SHIELD_PERSON, "key", rtb_key, caller_number)


def ping_digest(scope: str, ping: Ping) -> str:
    return shield_digest(scope, ping.key, ping.publisher_id, ping.caller_number)


def index_digest(rtb_key: str, uuid: str) -> str:
    """Where a reservation's uuid points at its shield key (for confirm).

    The RTB key is part of it so that a confirmation can only ever touch answers that
    were given for the same key.
    """
    return _digest(_INDEX_PERSON, rtb_key, uuid.lower())
