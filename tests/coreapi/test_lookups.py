"""How the replica-wide concurrency cap is split between worker processes."""

from __future__ import annotations

from gateway.config import Settings
from gateway.coreapi.lookups import per_process_concurrency


def test_the_concurrency_cap_is_shared_by_the_workers_of_a_replica() -> None:
    def cap(**values: int) -> int:
        return per_process_concurrency(Settings.from_env({}, **values))

    assert cap() == 4
    assert cap(workers=2) == 2
    assert cap(core_api_max_concurrency=10, workers=4) == 2
    assert cap(workers=8) == 1
