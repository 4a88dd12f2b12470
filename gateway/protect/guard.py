"""Admission of a parsed ping or confirmation: allow-list first, then rate limits.

Pings and confirmations share each key's and publisher's buckets (one limit on what a
key sends upstream), so a confirmation can no more go around a limit than a ping.

Runs after parsing (both checks need the key and publisher) and before the shield, so a
refused ping is never forwarded and never answered from the shield either: a publisher
over its limit or with an unknown key learns nothing about other publishers' bids.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.errors import Forbidden, RateLimited
from gateway.protect.allowlist import KeyAllowList
from gateway.protect.confirm_guard import ConfirmGuard
from gateway.protect.ratelimit import RateLimiter, retry_after_header


class Guard:
    """The per-request checks; ``on_refusal(reason)`` counts each refusal."""

    def __init__(
        self,
        *,
        allow_list: KeyAllowList | None = None,
        limiter: RateLimiter | None = None,
        on_refusal: Callable[[str], None] | None = None,
    ) -> None:
        self.allow_list = allow_list
        self.limiter = limiter if limiter is not None and limiter.active else None
        self._on_refusal = on_refusal
        #: the confirmed-but-not-called guard (confirm_guard.py), set by create_app
        self.confirms: ConfirmGuard | None = None

    def admit_key(self, rtb_key: str) -> None:
        """403 for a key outside the allow-list (when there is one)."""
        if self.allow_list is not None and not self.allow_list.allows(rtb_key):
            self._refused("forbidden_key")
            raise Forbidden()

    async def admit_ping(self, rtb_key: str, publisher_id: str | None) -> None:
        """403 for an unknown key, 429 with ``Retry-After`` over a rate limit. Call data
        writing comes through here too, with ``publisher_id`` None when it names none."""
        self.admit_key(rtb_key)
        if self.limiter is None:
            return
        verdict = await self.limiter.check(rtb_key, publisher_id)
        if not verdict.allowed:
            self._refused("rate_limited")
            raise RateLimited(
                f"too many pings for this {verdict.scope}; retry after the time in Retry-After",
                headers={"Retry-After": retry_after_header(verdict.retry_after_s)},
            )

    async def admit_confirmation(
        self, rtb_key: str, publisher_id: str | None = None, uuid: str | None = None
    ) -> None:
        """A confirmation passes the same checks as a ping and spends from the same
        buckets: the limits are on what a key (or publisher) sends to the upstream, and
        a confirmation is forwarded every time, never answered from the shield. Without
        this, a limited key could send confirmations at any rate (each one an upstream
        request) while its pings were held to their limit. Then the confirm guard."""
        self.admit_key(rtb_key)
        if self.confirms is not None and uuid is not None:
            try:
                self.confirms.admit(uuid, publisher_id)
            except RateLimited:
                self._refused("rate_limited")
                raise
        if self.limiter is None:
            return
        verdict = await self.limiter.check(rtb_key, publisher_id)
        if not verdict.allowed:
            self._refused("rate_limited")
            raise RateLimited(
                f"too many pings and confirmations for this {verdict.scope}; "
                "retry after the time in Retry-After",
                headers={"Retry-After": retry_after_header(verdict.retry_after_s)},
            )

    def _refused(self, reason: str) -> None:
        if self._on_refusal is not None:
            self._on_refusal(reason)
