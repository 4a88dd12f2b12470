"""The confirm guard's rules on its own: window, rate, modes, bounds."""

from __future__ import annotations

import pytest

from gateway.errors import RateLimited
from gateway.protect.confirm_guard import ConfirmGuard


def _guard(mode: str = "on", **kw: object) -> tuple[ConfirmGuard, list[str]]:
    verdicts: list[str] = []
    guard = ConfirmGuard(mode, window=4, min_rate=0.5, on_verdict=verdicts.append, **kw)  # type: ignore[arg-type]
    return guard, verdicts


def test_refuses_only_after_a_full_window_under_the_rate() -> None:
    guard, verdicts = _guard()
    for _ in range(3):
        guard.settled("pub", False)
    guard.admit("u1", "pub")  # three settled confirms: too little known
    guard.settled("pub", False)
    with pytest.raises(RateLimited) as raised:
        guard.admit("u2", "pub")
    assert raised.value.headers["Retry-After"] == "60"
    assert verdicts == ["refused"]
    # Calls lift it: the window holds the last four only.
    guard.settled("pub", True)
    guard.settled("pub", True)
    assert guard.rate("pub") == 0.5
    guard.admit("u3", "pub")


def test_the_reservations_publisher_stands_in_when_the_confirmation_names_none() -> None:
    guard, _ = _guard()
    for _ in range(4):
        guard.settled("pub", False)
    guard.admit("unknown-uuid", None)  # nobody to judge
    guard.reserved("u1", "pub")
    with pytest.raises(RateLimited):
        guard.admit("u1", None)


def test_shadow_counts_and_off_ignores() -> None:
    guard, verdicts = _guard("shadow")
    for _ in range(4):
        guard.settled("pub", False)
    guard.admit("u", "pub")
    assert verdicts == ["would_refuse"]
    off, off_verdicts = _guard("off")
    for _ in range(4):
        off.settled("pub", False)
    off.admit("u", "pub")
    assert off.rate("pub") is None
    assert off_verdicts == []


def test_maps_are_bounded_and_count_what_they_forget() -> None:
    guard, verdicts = _guard(max_publishers=2, max_reservations=2)
    for n in range(3):
        guard.settled(f"pub{n}", False)
        guard.reserved(f"u{n}", f"pub{n}")
    assert guard.rate("pub0") is None
    assert verdicts == ["forgotten", "forgotten"]
