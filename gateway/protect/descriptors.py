"""File descriptors: what the settings need, and raising the soft limit toward it.

Every client connection, upstream connection and Redis connection is a descriptor. With
systemd's (and many containers') default soft limit of 1,024 and the default
``GATEWAY_MAX_CONNECTIONS`` of 10,000, the process ran out long before the cap: new
clients got no answer at all and pings needing a new upstream connection got 502
"connection refused", with nothing logged. So at start the soft limit is raised to the
hard one (which an unprivileged process may do, as Go's runtime and nginx's
``worker_rlimit_nofile`` do), and when even that is below what the settings need,
``gateway serve`` logs a warning and ``gateway check-config`` prints one.

The count is per process (``--workers N``: each worker has its own limit and its own
connections; the cap and the pools are per worker too).
"""

from __future__ import annotations

import contextlib
import resource
from dataclasses import dataclass

from gateway.config import Settings
from gateway.wire.protocol import PROBE_RESERVE

# Listening sockets, the event loop's own, log files, the metrics directory, TLS files,
# DNS: a margin beyond the connections counted below.
SPARE = 64


def needed(settings: Settings) -> int:
    """Descriptors one process may hold at once under these settings."""
    clients = settings.max_connections + PROBE_RESERVE
    # The RTB client keeps one pool for pings and one for call data writing.
    rtb = 2 * settings.rtb_max_connections
    core_api = settings.core_api_max_concurrency
    redis = settings.redis_max_connections if settings.redis_url is not None else 0
    return clients + rtb + core_api + redis + SPARE


@dataclass(frozen=True, slots=True)
class Descriptors:
    """The open-file limit (``RLIMIT_NOFILE``) against what the settings need."""

    soft: int
    hard: int
    needed: int

    @property
    def short(self) -> bool:
        return self.soft < self.needed

    def warning(self) -> str | None:
        """Words for the operator when the limit is too low, naming what to change."""
        if not self.short:
            return None
        hard = "unlimited" if self.hard == resource.RLIM_INFINITY else str(self.hard)
        return (
            f"the open-file limit ({self.soft}, hard {hard}) is below the ~{self.needed} "
            "descriptors GATEWAY_MAX_CONNECTIONS and the upstream and Redis pools "
            "(GATEWAY_RTB_MAX_CONNECTIONS, GATEWAY_REDIS_MAX_CONNECTIONS) may need; past "
            "it, new clients get no answer and new upstream connections fail. Raise the "
            "limit (ulimit -n, LimitNOFILE=, the container runtime's nofile) or lower "
            "GATEWAY_MAX_CONNECTIONS"
        )


def current(settings: Settings) -> Descriptors:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return Descriptors(soft, hard, needed(settings))


def raise_soft_limit(settings: Settings) -> Descriptors:
    """Raise the soft limit to the hard one (or to the need, when the hard is unlimited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed(settings)
    target = max(soft, want) if hard == resource.RLIM_INFINITY else hard
    if target > soft:
        # Over fs.nr_open, say: keep what we have, and the warning says so.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return current(settings)
