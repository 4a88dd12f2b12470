"""Resources: everything expensive, built once in the lifespan and handed to handlers.

Handlers reach it as ``request.state.res``. Nothing here is a module-level global, so
several apps (tests, benchmarks) can live in one process without sharing pools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.config import Settings
from gateway.health import DrainState
from gateway.metrics import Metrics
from gateway.shield.base import Shield
from gateway.upstream.rtb import RtbClient

if TYPE_CHECKING:
    from gateway.core_api.lookups import Lookups
    from gateway.protect.guard import Guard


@dataclass
class Resources:
    settings: Settings
    metrics: Metrics
    drain: DrainState
    rtb: RtbClient
    shield: Shield
    lookups: Lookups | None = None
    guard: Guard | None = None  # allow-list and rate limits (gateway/protect/)
    extras: dict[str, Any] = field(default_factory=dict)
