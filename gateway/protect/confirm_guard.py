"""The confirmed-but-not-called guard: stop confirming for publishers whose callers never call.

Retreaver warns that a confirmed reservation nobody calls "may lead to penalties". This
guard weighs each publisher's last ``GATEWAY_CONFIRM_GUARD_WINDOW`` confirmed
reservations whose outcome reconciliation has settled (called or late_call count as
called; not_called does not) and, while the share called is under
``GATEWAY_CONFIRM_GUARD_MIN_RATE``, refuses its confirmations with 429 (outcome
``rate_limited``) in mode ``on``, or only counts what it would refuse in ``shadow`` (the
default). A publisher with fewer settled confirms than the window is never refused:
too little is known. A refusal is lifted as soon as calls raise the rate again.

The publisher of a confirmation is the one it names, else the one of its reservation,
remembered as reservations are recorded (a bounded map; one dict write on the ping
path, no I/O). Both maps are bounded and count what they forget.

What the guard knows comes from the reconciliation passes this process runs: with the
PostgreSQL ledger and several replicas, the replica holding the pass learns; others
stay permissive (documented).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Literal

from gateway.errors import RateLimited

Mode = Literal["off", "shadow", "on"]
MAX_PUBLISHERS = 10_000
MAX_RESERVATIONS = 100_000
# A refusal asks the publisher to come back after a pass may have changed the picture.
RETRY_AFTER_S = "60"


def _nothing(_: str) -> None:
    return None


class ConfirmGuard:
    def __init__(
        self,
        mode: Mode,
        *,
        window: int,
        min_rate: float,
        on_verdict: Callable[[str], None] = _nothing,
        max_publishers: int = MAX_PUBLISHERS,
        max_reservations: int = MAX_RESERVATIONS,
    ) -> None:
        self.mode = mode
        self.window = window
        self.min_rate = min_rate
        self._on_verdict = on_verdict  # "would_refuse", "refused", "forgotten"
        self.max_publishers = max_publishers
        self.max_reservations = max_reservations
        self._history: OrderedDict[str, deque[bool]] = OrderedDict()
        self._owners: OrderedDict[str, str] = OrderedDict()

    def reserved(self, uuid: str | None, publisher: str | None) -> None:
        """A reservation was answered to ``publisher`` (the ping path: one dict write)."""
        if self.mode == "off" or not uuid or not publisher:
            return
        owners = self._owners
        owners[uuid] = publisher
        if len(owners) > self.max_reservations:
            owners.popitem(last=False)
            self._on_verdict("forgotten")

    def settled(self, publisher: str | None, called: bool) -> None:
        """Reconciliation settled one of ``publisher``'s confirmed reservations."""
        if self.mode == "off" or not publisher:
            return
        history = self._history.get(publisher)
        if history is None:
            history = self._history[publisher] = deque(maxlen=self.window)
            if len(self._history) > self.max_publishers:
                self._history.popitem(last=False)
                self._on_verdict("forgotten")
        else:
            self._history.move_to_end(publisher)
        history.append(called)

    def rate(self, publisher: str) -> float | None:
        """The publisher's confirm→call rate over a full window, None until it has one."""
        history = self._history.get(publisher)
        if history is None or len(history) < self.window:
            return None
        return sum(history) / len(history)

    def admit(self, uuid: str, publisher: str | None) -> None:
        """429 ``rate_limited`` for a publisher under the rate in mode ``on``."""
        if self.mode == "off":
            return
        who = publisher or self._owners.get(uuid)
        if who is None:
            return
        rate = self.rate(who)
        if rate is None or rate >= self.min_rate:
            return
        if self.mode == "shadow":
            self._on_verdict("would_refuse")
            return
        self._on_verdict("refused")
        raise RateLimited(
            "this publisher's confirmed reservations are rarely called; confirmations "
            "are refused until more of them are",
            headers={"Retry-After": RETRY_AFTER_S},
        )
