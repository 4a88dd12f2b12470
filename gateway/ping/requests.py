"""The validated publisher requests: what the parsers produce and the rest consume.

They live below everything that uses them (rtb/ parses pings, confirmations and call
data writes into them; shield/ keys on a ping; protect/ admits by key and publisher), so
no layer imports the one above it for a type. Values are frozen: once parsed, a request
is only read.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import msgspec

_json_encoder = msgspec.json.Encoder()


class Ping(msgspec.Struct, frozen=True):
    """A validated ping. ``publisher_field`` keeps the name the publisher used.

    ``caller_number`` is None only when ``GATEWAY_RTB_CALLER_NUMBER=optional`` let a ping
    without one through (postback keys Retreaver lets bid without it): such a ping has
    nothing to shield on and is always forwarded.
    """

    key: str
    publisher_id: str
    caller_number: str | None
    inbound_number: str | None = None
    publisher_field: str = "publisher_id"
    tags: dict[str, str] = {}

    def upstream_fields(self) -> dict[str, str]:
        """The normalised fields as the upstream receives them (tags after known fields)."""
        fields = {"key": self.key, self.publisher_field: self.publisher_id}
        if self.caller_number is not None:
            fields["caller_number"] = self.caller_number
        if self.inbound_number is not None:
            fields["inbound_number"] = self.inbound_number
        fields.update(self.tags)
        return fields

    def upstream_body(self) -> bytes:
        return _json_encoder.encode(self.upstream_fields())


class Confirmation(msgspec.Struct, frozen=True):
    """A validated ``PUT|PATCH /rtbs/{uuid}.json``."""

    uuid: str
    key: str
    status: str = "confirmed"
    # The publisher it names, if any: spent from that publisher's rate limit and kept in
    # the ledger, never forwarded (a confirmation carries only key and status upstream).
    publisher_id: str | None = None

    def upstream_body(self) -> bytes:
        return _json_encoder.encode({"key": self.key, "status": self.status})


class DataWrite(msgspec.Struct, frozen=True):
    """A validated call data write: what may be forwarded to retreaverdata.com."""

    key: str
    caller_number: str | None = None
    call_uuid: str | None = None
    tags: dict[str, str] = {}

    @property
    def publisher_id(self) -> str | None:
        """The publisher it names, if any (for the guard's per-publisher limit)."""
        return self.tags.get("publisher_id") or self.tags.get("source_id")

    def upstream_fields(self) -> dict[str, str]:
        fields = {"key": self.key}
        if self.caller_number is not None:
            fields["caller_number"] = self.caller_number
        if self.call_uuid is not None:
            fields["call_uuid"] = self.call_uuid
        fields.update(self.tags)
        return fields

    def upstream_body(self) -> bytes:
        return _json_encoder.encode(self.upstream_fields())

    def upstream_get(self) -> str:
        """``/data_writing/{key}?...``: the key in the path, the rest in the query."""
        query = {k: v for k, v in self.upstream_fields().items() if k != "key"}
        return f"/data_writing/{quote(self.key, safe='')}?{urlencode(query)}"
