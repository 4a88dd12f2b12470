"""The Core API's knobs in ``POST /_sandbox/config`` (beside the RTB ones).

``core_api_429``            answer the next N Core API requests with 429 (counts down)
``core_api_retry_after_s``  the ``Retry-After`` those 429s carry (default 1)
``core_api_max_concurrency`` more Core API requests than this in flight at once get 429
                            (default 10)
``core_api_delay_ms``       hold every Core API request this long before answering
``core_api_status``         answer every Core API request with this status and
                            ``{"error": "sandbox error NNN"}`` (for 5xx handling)
"""

from __future__ import annotations

from typing import Any

from gateway.sandbox.api.state import DEFAULT_MAX_CONCURRENCY

MAX_DELAY_MS = 60_000

_LIMITS: dict[str, tuple[int, int]] = {
    "core_api_429": (0, 1_000_000),
    "core_api_retry_after_s": (0, 3600),
    "core_api_max_concurrency": (1, 100_000),
    "core_api_delay_ms": (0, MAX_DELAY_MS),
    "core_api_status": (100, 599),
}


def check_config(config: dict[str, Any]) -> str | None:
    """A message naming the first bad Core API knob, or None."""
    for name, (low, high) in _LIMITS.items():
        if name not in config or config[name] is None:
            continue
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"{name} must be an integer from {low} to {high}"
    return None


def knob(config: dict[str, Any], name: str) -> int | None:
    value = config.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def max_concurrency(config: dict[str, Any]) -> int:
    value = knob(config, "core_api_max_concurrency")
    return DEFAULT_MAX_CONCURRENCY if value is None else value


def retry_after(config: dict[str, Any]) -> int:
    value = knob(config, "core_api_retry_after_s")
    return 1 if value is None else value
