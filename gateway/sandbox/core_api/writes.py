"""Write routes (create/update/delete, caps, reset_cap, tag lists): filled in below."""

from __future__ import annotations

from gateway.sandbox.core_api.context import Handler

WRITES: list[tuple[str, str, Handler]] = []
