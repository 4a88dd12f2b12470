"""A ledger event: cheap to make on the ping path, complete when written.

Two shapes. :class:`Event` is what ``record()`` builds while a ping is answered: plain
references to values already at hand (the raw key and caller number included) and
nothing computed. :class:`Row` is what every store keeps and every export shows, the
contract's fields with these names, built by the background writer from an event by
:class:`Materializer`: there the caller number becomes an HMAC-SHA-256 digest, the key a
short digest, times become RFC 3339 text, and anything the upstream sent is bounded.
Digests and formatting cost a few µs each; doing them in the writer keeps them off the
ping's latency, and the raw values never leave this process's memory.

Idempotency: an event is identified by ``(request_id, leg)``; leg 0 is the plain request
and an auction's legs are 1..n, so a batch written twice writes each event once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import UTC, datetime

import msgspec

from gateway.ledger.outcomes import Reservation

# What the writer keeps of anything a publisher or the upstream sent (they are bounded
# already by the parsers and the answer limit; these keep a row small whatever happens).
MAX_TEXT = 255
MAX_SHORT = 64
# A key's digest: 16 hex characters of SHA-256, stable across restarts and replicas.
KEY_ID_CHARS = 16
_KEY_IDS_MAX = 4096

try:  # OpenSSL's HMAC object: copy, update and digest are one C call each
    from _hashlib import hmac_new as _keyed
except ImportError:  # a Python without OpenSSL: the same calls, through hmac.HMAC

    def _keyed(key: bytes, digestmod: str) -> hmac.HMAC:  # type: ignore[misc]
        return hmac.new(key, digestmod=digestmod)


class Event(msgspec.Struct, gc=False):
    """One request's record as taken on the ping path (see the module docstring)."""

    at: float  # epoch seconds when the answer was sent
    request_id: str
    route: str
    status: int
    outcome: str
    publisher_id: str | None = None
    sub_id: str | None = None
    key: str | None = None  # raw; digested by the writer
    caller: str | None = None  # raw E.164; digested by the writer
    reservation: Reservation | None = None
    reservation_uuid: str | None = None  # a confirmation's uuid (its path)
    duration_s: float | None = None
    upstream_s: float | None = None
    leg: int = 0
    destination: str | None = None
    auction: str | None = None


class Row(msgspec.Struct, gc=False):
    """An event as stored and exported: every field present, ``null`` when it has none.

    ``gc=False``: a row holds only strings, numbers, booleans and None, so it can never be
    part of a cycle, and the in-process ring's 100,000 rows are not walked by every full
    collection (which showed as 15 ms pauses in a ping's p99). Built positionally by the
    writer: a third of the cost of 19 keywords."""

    at: str
    request_id: str
    leg: int
    route: str
    status: int
    outcome: str
    publisher_id: str | None
    sub_id: str | None
    key_id: str | None
    caller: str | None
    reservation_uuid: str | None
    payout: float | None
    seconds: int | None
    inbound_number: str | None
    expires_at: str | None
    duration_ms: float | None
    upstream_ms: float | None
    destination: str | None
    auction: str | None
    call_uuid: str | None = None
    call_outcome: str | None = None
    converted: bool | None = None
    payout_earned: float | None = None


ROW_FIELDS = tuple(f.name for f in msgspec.structs.fields(Row))


def format_at(epoch_s: float) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-12-04T18:31:20.123Z``.

    Events come in bursts: the last millisecond's text is kept, and the last second's, so
    most events cost a comparison and the rest only the milliseconds' formatting."""
    ms = int(epoch_s * 1000)  # truncated as the writer's stored time is
    if ms == _last_ms[0]:
        return _last_ms[1]
    second = ms // 1000
    if _last_second[0] != second:
        moment = datetime.fromtimestamp(second, UTC)
        _last_second[0], _last_second[1] = second, moment.strftime("%Y-%m-%dT%H:%M:%S.")
    text = f"{_last_second[1]}{ms % 1000:03d}Z"
    _last_ms[0], _last_ms[1] = ms, text
    return text


# (epoch second, its RFC 3339 text up to the dot) and (epoch ms, its whole text):
# format_at's one-entry caches.
_last_second: list = [None, ""]
_last_ms: list = [None, ""]


def parse_at(text: str) -> float:
    """Epoch seconds of an RFC 3339 time (a time without a zone is UTC); ValueError if not."""
    if not 10 <= len(text) <= 40:
        raise ValueError("not an RFC 3339 time")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class Materializer:
    """Turns :class:`Event` into :class:`Row`; holds the secret the caller digests use.

    ``secret`` is ``GATEWAY_LEDGER_SECRET``; without one a random secret is drawn per
    process, so digests then match only within one run.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self.random_secret = not secret
        # Keyed once: each digest copies the keyed state (C) instead of keying again,
        # half the cost of the one-shot ``hmac.digest``. The secret itself is not kept.
        self._keyed = _keyed(secret or os.urandom(32), digestmod="sha256")
        self._key_ids: dict[str, str] = {}
        # The last caller digested, and its digest: an auction's legs are recorded one
        # after another with the same caller (six events, one HMAC instead of six).
        self._last_caller: tuple[str | None, str] = (None, "")

    def __repr__(self) -> str:  # the secret never prints
        return f"Materializer(random_secret={self.random_secret})"

    def caller_digest(self, number: str) -> str:
        """HMAC-SHA-256 of the number with the ledger secret, as hex."""
        last = self._last_caller
        if number == last[0]:
            return last[1]
        mac = self._keyed.copy()
        mac.update(number.encode("utf-8", "replace"))
        digest = mac.hexdigest()
        self._last_caller = (number, digest)
        return digest

    def key_id(self, key: str) -> str:
        known = self._key_ids.get(key)
        if known is None:
            digest = hashlib.sha256(b"rtb-key:" + key.encode("utf-8", "replace"))
            known = digest.hexdigest()[:KEY_ID_CHARS]
            if len(self._key_ids) < _KEY_IDS_MAX:
                self._key_ids[key] = known
        return known

    def row(self, event: Event) -> Row:
        """The stored shape of ``event``; never raises on any value it may hold.

        It runs for every event on the ping path's core (in the background), so fields are
        passed positionally and the common case (no reservation) skips its five fields."""
        reservation = event.reservation
        if reservation is None:
            uuid = _text(event.reservation_uuid, MAX_SHORT)
            payout = seconds = inbound = expires = None
        else:
            uuid = _text(event.reservation_uuid or reservation.uuid, MAX_SHORT)
            payout = _finite(reservation.retreaver_payout)
            seconds = _seconds(reservation.retreaver_seconds)
            inbound = _text(reservation.inbound_number, MAX_SHORT)
            expires = _text(reservation.expires_at, MAX_SHORT)
        request_id = event.request_id
        if len(request_id) > 128 or "\x00" in request_id:
            request_id = _text(request_id, 128) or ""
        return Row(
            format_at(event.at),
            request_id,
            event.leg,
            event.route,
            event.status,
            event.outcome,
            _text(event.publisher_id, MAX_TEXT),
            _text(event.sub_id, MAX_TEXT),
            self.key_id(event.key) if event.key else None,
            self.caller_digest(event.caller) if event.caller else None,
            uuid,
            payout,
            seconds,
            inbound,
            expires,
            _ms(event.duration_s),
            _ms(event.upstream_s),
            _text(event.destination, MAX_TEXT),
            _text(event.auction, MAX_TEXT),
        )


def _text(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    if len(value) > limit:
        value = value[:limit]
    # NUL is the one character PostgreSQL text cannot hold.
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _finite(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return float(value)


def _seconds(value: float | None) -> int | None:
    value = _finite(value)
    if value is None or not 0 <= value < 2**31:
        return None
    return int(value)


def _ms(seconds: float | None) -> float | None:
    """Milliseconds to the µs (truncated: ``round`` costs five times as much)."""
    return None if seconds is None else int(seconds * 1_000_000) / 1000
