"""Attribute handling shared by the write routes: coercion as Rails would cast a JSON
value into a column (``"1000"`` → 1000 for an integer), required attributes, nested caps
and ``tag_list``. Anything the sandbox will not store raises :class:`Invalid` (a 422).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from gateway.sandbox.api.context import Ctx
from gateway.sandbox.api.data import Record, tag_values

Build = Callable[[Ctx, dict[str, Any]], Record]
Apply = Callable[[Ctx, Record, dict[str, Any]], None]


class Invalid(ValueError):
    """An attribute the sandbox will not store: answered 422."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def coerce(name: str, value: Any, kind: str) -> Any:
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None or value == "":
        if nullable:
            return None
        raise Invalid(f"{name} can't be blank")
    if kind == "str":
        return str(value)
    if kind == "int":
        if isinstance(value, bool):
            raise Invalid(f"{name} must be an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise Invalid(f"{name} must be an integer") from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1"):
            return True
        if str(value).lower() in ("false", "0"):
            return False
        raise Invalid(f"{name} must be true or false")
    raise AssertionError(kind)


def assign(record: Record, attrs: dict[str, Any], spec: dict[str, str]) -> None:
    for name, kind in spec.items():
        if name in attrs:
            record[name] = coerce(name, attrs[name], kind)


def require(attrs: dict[str, Any], *names: str) -> None:
    for name in names:
        if attrs.get(name) in (None, ""):
            raise Invalid(f"{name} can't be blank")


def apply_caps(record: Record, attrs: dict[str, Any]) -> None:
    for kind in ("hard", "hourly", "daily", "monthly"):
        nested = attrs.get(f"{kind}_cap_attributes")
        if nested is None:
            continue
        if not isinstance(nested, dict) or "cap" not in nested:
            raise Invalid(f"{kind}_cap_attributes must be an object with a cap")
        cap = next(c for c in record["caps"] if c["type"].lower() == kind)
        cap["cap"] = coerce("cap", nested["cap"], "int?")


def apply_tag_list(ctx: Ctx, record: Record, attrs: dict[str, Any]) -> None:
    if "tag_list" in attrs:
        record["tag_values"] = tag_values(ids_for(ctx), str(attrs["tag_list"] or ""))


def ids_for(ctx: Ctx) -> Iterator[int]:
    return iter(ctx.data.next_id, None)


def list_of_objects(name: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise Invalid(f"{name} must be an array of objects")
    return value
