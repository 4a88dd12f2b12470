"""Pure parts of the protections: rate specs, GCRA arithmetic, the allow-list, the breaker."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, Settings
from gateway.errors import GatewayError
from gateway.protect.allowlist import KeyAllowList
from gateway.protect.breaker import CircuitBreaker
from gateway.protect.ratelimit import MemoryBuckets
from gateway.protect.rules import Rate, parse_limits, parse_rate, read_keys_file, split_keys


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/s", Rate(100, 1.0, 100)),
        ("6000/m:500", Rate(6000, 60.0, 500)),
        (" 20000 / h ", Rate(20000, 3600.0, 20000)),
        ("1/s:1", Rate(1, 1.0, 1)),
    ],
)
def test_rates_parse(text: str, expected: Rate) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "100", "100/d", "0/s", "10/s:0", "-1/s", "ten/s", "5/s:x"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"COUNT|BURST"):
        parse_rate(text)


def test_spec_with_default_and_overrides() -> None:
    limits = parse_limits("50/s, acme=500/s:1000, trusted=off")
    assert limits.for_name("someone") == Rate(50, 1.0, 50)
    assert limits.for_name("acme") == Rate(500, 1.0, 1000)
    assert limits.for_name("trusted") is None
    assert limits.active
    assert not parse_limits("").active
    assert parse_limits("acme=5/s").for_name("other") is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("5/s, 6/s", "more than one default"),
        ("a=5/s, a=6/s", "given twice"),
        ("=5/s", "bad name"),
    ],
)
def test_bad_specs_say_why(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_limits(spec)


def test_key_limits_take_no_overrides() -> None:
    with pytest.raises(ValueError, match="not allowed"):
        parse_limits("5/s, somekey=1/s", overrides_allowed=False)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"GATEWAY_RATE_LIMIT_PER_PUBLISHER": "5/fortnight"}, "GATEWAY_RATE_LIMIT_PER_PUBLISHER"),
        ({"GATEWAY_RATE_LIMIT_PER_KEY": "5/s,k=1/s"}, "GATEWAY_RATE_LIMIT_PER_KEY"),
        ({"GATEWAY_RTB_ALLOWED_KEYS": " , "}, "GATEWAY_RTB_ALLOWED_KEYS"),
        ({"GATEWAY_RTB_ALLOWED_KEYS_FILE": "/nonexistent/keys"}, "GATEWAY_RTB_ALLOWED_KEYS_FILE"),
        ({"GATEWAY_BREAKER_OPEN_S": "0"}, "GATEWAY_BREAKER_OPEN_S"),
        ({"GATEWAY_MAX_IN_FLIGHT": "0"}, "GATEWAY_MAX_IN_FLIGHT"),
        ({"GATEWAY_MAX_QUERY_BYTES": "-5"}, "GATEWAY_MAX_QUERY_BYTES"),
        ({"GATEWAY_MAX_HEADER_BYTES": "100"}, "GATEWAY_MAX_HEADER_BYTES"),
        ({"GATEWAY_CLIENT_TIMEOUT_S": "0"}, "GATEWAY_CLIENT_TIMEOUT_S"),
        ({"GATEWAY_MAX_CONNECTIONS": "0"}, "GATEWAY_MAX_CONNECTIONS"),
    ],
)
def test_settings_name_the_bad_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.variable == variable


def test_allowed_keys_never_print(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.from_env({"GATEWAY_RTB_ALLOWED_KEYS": "sekrit-one,sekrit-two"})
    shown = repr(settings) + str(settings.masked())
    assert "sekrit" not in shown


def test_gcra_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock=clock)
    rate = Rate(10, 1.0, 3)  # one every 0.1 s, three back to back
    assert [buckets.check("b", rate) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = buckets.check("b", rate)
    assert wait == pytest.approx(0.1)
    clock.now += 0.1
    assert buckets.check("b", rate) == 0.0
    assert buckets.check("b", rate) == pytest.approx(0.1)
    assert buckets.check("other", rate) == 0.0  # buckets are independent


def test_gcra_refusals_do_not_dig_deeper() -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock=clock)
    rate = Rate(1, 1.0, 1)
    assert buckets.check("b", rate) == 0.0
    for _ in range(100):
        assert buckets.check("b", rate) == pytest.approx(1.0)
    clock.now += 1.0
    assert buckets.check("b", rate) == 0.0


def test_memory_buckets_are_bounded() -> None:
    buckets = MemoryBuckets(max_entries=100, clock=Clock())
    for i in range(1000):
        buckets.check(f"pub-{i}", Rate(1, 1.0, 1))
    assert len(buckets) == 100


def test_allow_list_membership() -> None:
    allow = KeyAllowList(["key-a", "key-b"])
    assert allow.allows("key-a")
    assert allow.allows("key-b")
    assert not allow.allows("key-c")
    assert not allow.allows("")
    assert not allow.allows("key-a ")
    assert len(allow) == 2


def test_allow_list_keeps_no_key_in_the_clear() -> None:
    allow = KeyAllowList(["plain-secret-key"])
    held = b"".join(allow._digests) + repr(vars(allow)).encode()
    assert b"plain-secret-key" not in held


def test_keys_file_and_list(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "keys"
    path.write_text("# the Acme campaigns\nkey-1\n\n  key-2  \n# key-3\n")
    assert read_keys_file(str(path)) == ["key-1", "key-2"]
    assert split_keys(" a, b ,,c ") == ["a", "b", "c"]


def test_breaker_opens_after_consecutive_failures_and_probes() -> None:
    clock = Clock()
    states: list[bool] = []
    refusals: list[str] = []
    breaker = CircuitBreaker(
        "rtb",
        failures=3,
        open_s=1.0,
        clock=clock,
        on_state=states.append,
        on_refusal=refusals.append,
    )
    for ok in (False, False, True, False, False):  # a success resets the count
        breaker.release(ok, breaker.acquire())
    assert breaker.state == "closed"
    breaker.release(False, breaker.acquire())
    assert breaker.state == "open"
    assert states == [True]
    with pytest.raises(GatewayError) as info:
        breaker.acquire()
    assert info.value.status == 503
    assert info.value.headers == {"Retry-After": "1"}
    assert refusals == ["breaker_open"]
    clock.now += 1.0
    probe = breaker.acquire()
    assert probe
    with pytest.raises(GatewayError):  # one probe per open_s, the rest still refused
        breaker.acquire()
    breaker.release(False, probe)  # the probe failed: another open_s
    with pytest.raises(GatewayError):
        breaker.acquire()
    clock.now += 1.0
    probe = breaker.acquire()
    breaker.release(True, probe)
    assert breaker.state == "closed"
    assert states == [True, False]
    assert breaker.in_flight == 0


def test_a_probe_that_hangs_for_its_deadline_does_not_delay_the_next_one() -> None:
    clock = Clock()
    breaker = CircuitBreaker("rtb", failures=1, open_s=0.5, clock=clock)
    breaker.release(False, breaker.acquire())
    assert breaker.state == "open"
    clock.now += 0.5
    first = breaker.acquire()  # hangs on a dead connection
    clock.now += 0.5
    second = breaker.acquire()  # due while the first is still out
    assert first
    assert second
    clock.now += 0.5
    breaker.release(False, first)  # the first times out only now
    third = breaker.acquire()  # still due open_s after the second went out
    breaker.release(True, third)
    assert breaker.state == "closed"


def test_a_cancelled_call_teaches_the_breaker_nothing() -> None:
    breaker = CircuitBreaker("rtb", failures=2, clock=Clock())
    for _ in range(10):
        breaker.release(None, breaker.acquire())
    assert breaker.state == "closed"
    assert breaker.in_flight == 0


def test_breaker_caps_in_flight_without_queueing() -> None:
    refusals: list[str] = []
    breaker = CircuitBreaker("rtb", max_in_flight=2, clock=Clock(), on_refusal=refusals.append)
    breaker.acquire()
    breaker.acquire()
    with pytest.raises(GatewayError) as info:
        breaker.acquire()
    assert (info.value.status, info.value.error) == (503, "overloaded")
    assert refusals == ["overloaded"]
    breaker.release(True, False)
    breaker.acquire()
    assert breaker.in_flight == 2


def test_zero_failures_disables_the_breaker() -> None:
    breaker = CircuitBreaker("rtb", failures=0, clock=Clock())
    for _ in range(100):
        breaker.release(False, breaker.acquire())
    assert breaker.state == "closed"
