"""The sandbox's postback keys (caller lists, call data writing) and seeded caller lists.

A postback key is a UUID with a secret; caller-list routes want both (``key`` in the query,
``Authorization: Bearer <secret>``), call data writing only the UUID.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.sandbox.api.data import CoreData, Record


@dataclass(frozen=True)
class PostbackKey:
    company: int
    secret: str
    kinds: tuple[str, ...]


#: Seeded postback keys: uuid -> (company, Bearer secret, what it may do).
POSTBACK_KEYS: dict[str, PostbackKey] = {
    "0b4d1a57-6c53-4c1e-9f0e-5d2a8f6b7c10": PostbackKey(
        1, "sandbox-caller-list-secret-1", ("caller_list", "data_writing")
    ),
    "7a2e9c44-1f3b-4d8e-a6c5-90b1d2e3f405": PostbackKey(
        1, "sandbox-caller-list-secret-2", ("caller_list",)
    ),
    "c3f1e2d4-5b6a-4798-8a9b-0c1d2e3f4a5b": PostbackKey(3, "sandbox-meow-secret", ("caller_list",)),
}


def seed_lists(data: CoreData) -> dict[tuple[int, str], Record]:
    """(target id, list name) -> the list with its numbers (``numbers``: number -> record)."""
    target = data.by_company[1].targets[0]
    lists: dict[tuple[int, str], Record] = {}
    for name, numbers in (("suppressed", ("+15855752500",)), ("book_of_business", ())):
        lists[(target["id"], name)] = {
            "list": {
                "name": name,
                "caller_listable_type": "Target",
                "caller_listable_id": target["id"],
            },
            "numbers": {
                n: {"number": n, "created_at": "2025-04-30T10:29:40.100Z"} for n in numbers
            },
        }
    return lists
