"""The auctions file (``GATEWAY_AUCTIONS_FILE``): TOML, or JSON when the name ends ``.json``.

::

    [[auctions]]
    name = "home-services"        # shown in metrics and logs
    key = "auction-home"          # what publishers send as `key`
    mode = "waterfall"            # or "parallel"; waterfall is the default
    budget_ms = 800               # the whole auction answers within this

    [[auctions.destinations]]
    name = "acme"
    key_env = "ACME_RTB_KEY"      # the postback key, read from the environment...
    # key = "..."                 # ...or written here (then the file is a secret)
    upstream = "https://rtb.retreaver.com"   # optional; GATEWAY_RTB_UPSTREAM_URL otherwise
    floor = 12.5                  # minimum retreaver_payout; default 0
    timeout_ms = 600              # this leg's own deadline; default budget_ms
    priority = 1                  # lowest first; default the position in the file

Why strict: a typo in an auctions file silently changes who gets a caller and at what
price, so unknown fields, duplicates and out-of-range values are refused, each error
naming the auction, the destination and the field. Error messages never quote a key: the
file holds secrets, and ``check-config`` output and reload warnings end up in logs.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.config import ConfigError, Secret

VARIABLE = "GATEWAY_AUCTIONS_FILE"
WATERFALL = "waterfall"
PARALLEL = "parallel"
MODES = (WATERFALL, PARALLEL)

MAX_AUCTIONS = 256
MAX_DESTINATIONS = 32
MAX_BUDGET_MS = 60_000
MAX_FILE_BYTES = 1024 * 1024

# Names become metric label values and a response header: short, plain words only.
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
# The same shape the ping parser accepts for `key`.
_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

_AUCTION_FIELDS = frozenset({"name", "key", "mode", "budget_ms", "destinations"})
_DESTINATION_FIELDS = frozenset(
    {"name", "key", "key_env", "upstream", "floor", "timeout_ms", "priority"}
)


class AuctionsFileError(ConfigError):
    """The auctions file is unusable; the message names auction, destination and field."""

    def __init__(self, message: str) -> None:
        super().__init__(VARIABLE, message)


@dataclass(frozen=True, slots=True)
class Destination:
    """One Retreaver campaign an auction may ping. ``key`` is a :class:`Secret`."""

    name: str
    key: Secret
    upstream: str
    floor: float
    timeout_ms: int
    priority: int
    position: int  # order in the file: the last tie-breaker


@dataclass(frozen=True, slots=True)
class Auction:
    name: str
    key: Secret
    mode: str
    budget_ms: int
    destinations: tuple[Destination, ...]  # sorted: priority, then position

    def destination(self, name: str) -> Destination | None:
        for destination in self.destinations:
            if destination.name == name:
                return destination
        return None


def read_auctions(path: str, env: Mapping[str, str], default_upstream: str) -> tuple[Auction, ...]:
    """Read and validate ``path``; raises :class:`AuctionsFileError`."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise AuctionsFileError(f"cannot read the file: {type(exc).__name__}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise AuctionsFileError(f"the file is over {MAX_FILE_BYTES} bytes")
    return parse_auctions(raw, env, default_upstream, json_format=path.endswith(".json"))


def parse_auctions(
    raw: bytes, env: Mapping[str, str], default_upstream: str, *, json_format: bool = False
) -> tuple[Auction, ...]:
    try:
        text = raw.decode("utf-8")
        data = json.loads(text) if json_format else tomllib.loads(text)
    except UnicodeDecodeError:
        raise AuctionsFileError("the file is not valid UTF-8") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        # Both name a line and column, never the text found there (it may be a key).
        kind = "JSON" if json_format else "TOML"
        raise AuctionsFileError(f"not valid {kind}: {_where(exc)}") from None
    if not isinstance(data, dict):
        raise AuctionsFileError("the top level must be an object holding `auctions`")
    unknown = sorted(set(data) - {"auctions"})
    if unknown:
        raise AuctionsFileError(f"unknown top-level field {_shown(unknown[0])!r}")
    entries = data.get("auctions")
    if not isinstance(entries, list) or not entries:
        raise AuctionsFileError("`auctions` must be a non-empty list ([[auctions]] in TOML)")
    if len(entries) > MAX_AUCTIONS:
        raise AuctionsFileError(f"at most {MAX_AUCTIONS} auctions")
    auctions = tuple(
        _auction(entry, index, env, default_upstream) for index, entry in enumerate(entries)
    )
    _check_unique(auctions)
    return auctions


def _where(exc: Exception) -> str:
    line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    if line is None:  # tomllib keeps them only in its message: "... (at line 3, column 7)"
        found = re.search(r"line (\d+), column (\d+)", str(exc))
        if found:
            line, column = int(found.group(1)), int(found.group(2))
    return f"line {line}, column {column}" if line is not None else "unreadable"


def _shown(name: object) -> str:
    """A field name fit for an error message (bounded, printable)."""
    text = re.sub(r"[^\x20-\x7e]", "?", str(name))
    return text if len(text) <= 64 else text[:61] + "..."


class _Where:
    """Builds the ``auction 'a', destination 'd', field `f`: ...`` prefix of an error."""

    def __init__(self, auction: str, destination: str | None = None) -> None:
        self.auction = auction
        self.destination = destination

    def error(self, field: str, problem: str) -> AuctionsFileError:
        parts = [f"auction {self.auction}"]
        if self.destination is not None:
            parts.append(f"destination {self.destination}")
        parts.append(f"field `{field}`")
        return AuctionsFileError(", ".join(parts) + ": " + problem)


def _label(entry: Mapping[str, Any], kind: str, index: int) -> str:
    name = entry.get("name")
    if isinstance(name, str) and _NAME.fullmatch(name):
        return repr(name)
    return f"{kind}[{index}]"


def _auction(entry: Any, index: int, env: Mapping[str, str], default_upstream: str) -> Auction:
    if not isinstance(entry, dict):
        raise AuctionsFileError(f"auctions[{index}] must be a table/object")
    where = _Where(_label(entry, "auctions", index))
    _no_unknown(entry, _AUCTION_FIELDS, where)
    name = _name(entry, where)
    key = _key_value(entry.get("key"), "key", where)
    mode = entry.get("mode", WATERFALL)
    if mode not in MODES:
        raise where.error("mode", "must be 'waterfall' or 'parallel'")
    budget_ms = _whole(entry, "budget_ms", where, None, upper=MAX_BUDGET_MS)
    items = entry.get("destinations")
    if not isinstance(items, list) or not items:
        raise where.error(
            "destinations", "must be a non-empty list ([[auctions.destinations]] in TOML)"
        )
    if len(items) > MAX_DESTINATIONS:
        raise where.error("destinations", f"at most {MAX_DESTINATIONS} per auction")
    destinations = [
        _destination(item, position, where, env, default_upstream, budget_ms)
        for position, item in enumerate(items)
    ]
    destinations.sort(key=lambda d: (d.priority, d.position))
    return Auction(name, Secret(key), mode, budget_ms, tuple(destinations))


def _destination(
    item: Any,
    position: int,
    auction: _Where,
    env: Mapping[str, str],
    default_upstream: str,
    budget_ms: int,
) -> Destination:
    if not isinstance(item, dict):
        raise AuctionsFileError(
            f"auction {auction.auction}: destinations[{position}] must be a table/object"
        )
    where = _Where(auction.auction, _label(item, "destinations", position))
    _no_unknown(item, _DESTINATION_FIELDS, where)
    name = _name(item, where)
    if ("key" in item) == ("key_env" in item):
        raise where.error("key", "give exactly one of `key` and `key_env`")
    if "key_env" in item:
        variable = item["key_env"]
        if not isinstance(variable, str) or not _ENV_NAME.fullmatch(variable):
            raise where.error("key_env", "must be an environment variable name")
        value = env.get(variable, "").strip()
        if not value:
            raise where.error("key_env", f"the environment variable {variable} is not set")
        key = _key_value(value, "key_env", where)
    else:
        key = _key_value(item["key"], "key", where)
    upstream = item.get("upstream", default_upstream)
    _check_upstream(upstream, where)
    floor = item.get("floor", 0)
    if isinstance(floor, bool) or not isinstance(floor, int | float) or floor != floor:
        raise where.error("floor", "must be a number (the minimum retreaver_payout)")
    if floor < 0:
        raise where.error("floor", f"must be >= 0, got {floor}")
    timeout_ms = _whole(item, "timeout_ms", where, budget_ms, upper=MAX_BUDGET_MS)
    priority = item.get("priority", position)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise where.error("priority", "must be a whole number (lowest is tried first)")
    return Destination(
        name, Secret(key), upstream.rstrip("/"), float(floor), timeout_ms, priority, position
    )


def _no_unknown(entry: Mapping[str, Any], known: frozenset[str], where: _Where) -> None:
    unknown = sorted(str(name) for name in set(entry) - known)
    if unknown:
        raise where.error(_shown(unknown[0]), "is not a known field")


def _name(entry: Mapping[str, Any], where: _Where) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise where.error("name", "must be 1-64 letters, digits, '_', '-' or '.'")
    return name


def _key_value(value: Any, field: str, where: _Where) -> str:
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise where.error(field, "must be 1-128 letters, digits, '_', '-' or '.'")
    return value


def _whole(
    entry: Mapping[str, Any], field: str, where: _Where, default: int | None, *, upper: int
) -> int:
    value = entry.get(field, default)
    if value is None:
        raise where.error(field, "is required (milliseconds)")
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(field, "must be a whole number of milliseconds")
    if value <= 0:
        raise where.error(field, f"must be > 0, got {value}")
    if value > upper:
        raise where.error(field, f"must be at most {upper}, got {value}")
    return value


def _check_upstream(url: Any, where: _Where) -> None:
    if not isinstance(url, str):
        raise where.error("upstream", "must be an http:// or https:// URL")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise where.error("upstream", "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise where.error("upstream", "must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise where.error("upstream", "must not carry credentials, a query or a fragment")


def _check_unique(auctions: tuple[Auction, ...]) -> None:
    names: set[str] = set()
    keys: dict[str, str] = {}  # auction key -> auction name
    for auction in auctions:
        where = _Where(repr(auction.name))
        if auction.name in names:
            raise where.error("name", "another auction has the same name")
        names.add(auction.name)
        key = auction.key.reveal()
        if key in keys:
            raise where.error("key", f"auction {keys[key]!r} has the same key")
        keys[key] = auction.name
    for auction in auctions:
        seen_names: set[str] = set()
        seen_keys: set[str] = set()
        for destination in auction.destinations:
            where = _Where(repr(auction.name), repr(destination.name))
            if destination.name in seen_names:
                raise where.error("name", "another destination of this auction has that name")
            seen_names.add(destination.name)
            key = destination.key.reveal()
            if key in seen_keys:
                raise where.error("key", "another destination of this auction has the same key")
            seen_keys.add(key)
            if key in keys:
                raise where.error(
                    "key",
                    f"equals the key of auction {keys[key]!r} (an auction key is not "
                    "a Retreaver postback key)",
                )


def describe(auctions: tuple[Auction, ...]) -> list[dict[str, Any]]:
    """The auctions as plain data with every key masked (check-config, the banner)."""
    return [
        {
            "name": a.name,
            "key": "***",
            "mode": a.mode,
            "budget_ms": a.budget_ms,
            "destinations": [
                {
                    "name": d.name,
                    "key": "***",
                    "upstream": d.upstream,
                    "floor": d.floor,
                    "timeout_ms": d.timeout_ms,
                    "priority": d.priority,
                }
                for d in a.destinations
            ],
        }
        for a in auctions
    ]
