"""The small languages of two settings, parsed here so config.py can validate them
without importing the protections above it (protect/ reads the parsed values).

Rate limits. Spec format (``GATEWAY_RATE_LIMIT_PER_PUBLISHER``, ``GATEWAY_RATE_LIMIT_PER_KEY``)::

    RATE      := COUNT "/" UNIT [":" BURST]      e.g. 100/s   6000/m:500   20000/h
    UNIT      := s | m | h                       (second, minute, hour)
    BURST     := pings allowed back to back      (default: COUNT, i.e. one UNIT's worth)
    SPEC      := ITEM ("," ITEM)*
    ITEM      := RATE                            the default for every publisher / key
               | NAME "=" (RATE | "off")         an override for one publisher_id

``GATEWAY_RATE_LIMIT_PER_PUBLISHER="50/s, acme=500/s:1000, trusted=off"``: every
publisher 50 pings/s except ``acme`` (500/s, bursts of 1000) and ``trusted`` (no limit).
Overrides are by publisher only: keys are secrets, and ``check-config`` prints settings.
Unset or empty means no limit (and no Redis call).

Allowed RTB keys: ``GATEWAY_RTB_ALLOWED_KEYS`` is comma-separated;
``GATEWAY_RTB_ALLOWED_KEYS_FILE`` holds one key per line (blank lines and ``#`` comments
ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_RATE = re.compile(r"(\d+)\s*/\s*([smh])(?:\s*:\s*(\d+))?")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_NAME = re.compile(r"[^\s=,]{1,255}")


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` per ``period_s`` seconds with ``burst`` back to back."""

    count: int
    period_s: float
    burst: int

    @property
    def interval_s(self) -> float:
        """Seconds between two pings at the sustained rate (GCRA's emission interval)."""
        return self.period_s / self.count

    @property
    def tolerance_s(self) -> float:
        """How far ahead of now the bucket's timestamp may run (the burst)."""
        return self.interval_s * self.burst

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}[self.period_s]
        return f"{self.count}/{unit}:{self.burst}"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """A default rate (or none) and per-name overrides (``None`` = unlimited)."""

    default: Rate | None = None
    overrides: tuple[tuple[str, Rate | None], ...] = ()

    def for_name(self, name: str) -> Rate | None:
        for candidate, rate in self.overrides:
            if candidate == name:
                return rate
        return self.default

    @property
    def active(self) -> bool:
        return self.default is not None or any(r is not None for _, r in self.overrides)


def parse_rate(text: str) -> Rate:
    match = _RATE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()!r} is not COUNT/UNIT[:BURST] (e.g. 100/s, 6000/m:500)")
    count = int(match.group(1))
    burst = int(match.group(3)) if match.group(3) else count
    if count <= 0 or count > 1_000_000:
        raise ValueError(f"{text.strip()!r}: COUNT must be 1..1000000")
    if burst <= 0 or burst > 1_000_000:
        raise ValueError(f"{text.strip()!r}: BURST must be 1..1000000")
    return Rate(count, _UNITS[match.group(2)], burst)


def parse_limits(spec: str, *, overrides_allowed: bool = True) -> RateLimits:
    """Parse a spec (module docstring); raises ``ValueError`` saying what is wrong."""
    default: Rate | None = None
    overrides: dict[str, Rate | None] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        if "=" not in item:
            if default is not None:
                raise ValueError("more than one default rate")
            default = parse_rate(item)
            continue
        if not overrides_allowed:
            raise ValueError("overrides (NAME=RATE) are not allowed here; give one RATE")
        name, _, value = item.partition("=")
        name = name.strip()
        if not _NAME.fullmatch(name):
            raise ValueError(f"bad name in {item[:80]!r}")
        if name in overrides:
            raise ValueError(f"{name!r} is given twice")
        value = value.strip()
        overrides[name] = None if value.lower() in ("off", "unlimited") else parse_rate(value)
    return RateLimits(default, tuple(overrides.items()))


def read_keys_file(path: str) -> list[str]:
    """Keys from a file, one per line; raises ``OSError``/``ValueError`` with a reason."""
    text = Path(path).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not _comment(line)]


def split_keys(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _comment(line: str) -> bool:
    return line.lstrip().startswith("#")
