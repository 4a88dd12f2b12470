"""The validated publisher requests: what the parsers produce and the rest consume.

They live below everything that uses them (rtb/ parses into them; shield/ keys on a
ping; protect/ admits by its key and publisher), so no layer imports the one above it
for a type. Values are frozen: once parsed, a request is only read.
"""

from __future__ import annotations

import msgspec

_json_encoder = msgspec.json.Encoder()


class Ping(msgspec.Struct, frozen=True):
    """A validated ping. ``publisher_field`` keeps the name the publisher used."""

    key: str
    publisher_id: str
    caller_number: str
    inbound_number: str | None = None
    publisher_field: str = "publisher_id"
    tags: dict[str, str] = {}

    def upstream_fields(self) -> dict[str, str]:
        """The normalised fields as the upstream receives them (tags after known fields)."""
        fields = {
            "key": self.key,
            self.publisher_field: self.publisher_id,
            "caller_number": self.caller_number,
        }
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

    def upstream_body(self) -> bytes:
        return _json_encoder.encode({"key": self.key, "status": self.status})
