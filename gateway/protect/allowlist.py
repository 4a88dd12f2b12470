"""The optional RTB key allow-list: unknown keys get 403 before anything is forwarded.

Keys come from ``GATEWAY_RTB_ALLOWED_KEYS`` (comma-separated) and/or
``GATEWAY_RTB_ALLOWED_KEYS_FILE`` (one key per line; blank lines and ``#`` comments
ignored); both given means the union. Neither given means every well-formed key may pass.
The file is read once at start-up: rotate keys by rolling the deployment.

Why hashed and how it stays constant-time: the process keeps only HMAC-SHA256 digests of
the allowed keys under a random per-process salt, never the keys. A presented key is
digested the same way; the digest is looked up by its value and the match confirmed with
:func:`hmac.compare_digest`. The lookup's timing depends only on digests an attacker can
neither choose nor predict (they don't know the salt), so response time reveals nothing
about how close a guess was to a real key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable


class KeyAllowList:
    """Membership of RTB keys, kept as salted digests."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._salt = secrets.token_bytes(32)
        # Stands in for "no such key" so both outcomes run the same comparison; no key
        # digests to it (that would need a SHA-256 preimage of random bytes).
        self._absent = secrets.token_bytes(32)
        self._digests: dict[bytes, bytes] = {}
        for key in keys:
            digest = self._digest(key)
            self._digests[digest] = digest

    def __len__(self) -> int:
        return len(self._digests)

    def _digest(self, key: str) -> bytes:
        return hmac.new(self._salt, key.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def allows(self, key: str) -> bool:
        presented = self._digest(key)
        return hmac.compare_digest(presented, self._digests.get(presented, self._absent))
