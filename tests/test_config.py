"""Settings from GATEWAY_*, and `gateway check-config` as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import msgspec
import pytest

from gateway.config import ConfigError, Secret, Settings, deprecations, mask_url


def test_defaults_are_the_contracts() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.workers) == ("0.0.0.0", 8080, 1)
    assert s.rtb_upstream_url == "https://rtb.retreaver.com"
    assert s.core_api_url == "https://api.retreaver.com"
    assert s.core_api_v2_url == "https://api.retreaver.com"
    assert s.redis_url is None
    assert s.rtb_timeout_ms == 3000
    assert s.shield_scope == "key"
    assert s.shield_max_ttl_s == 3600
    assert s.max_body_bytes == 65536
    assert s.core_api_max_concurrency == 4
    assert s.drain_delay_s == 5
    assert s.rtb_max_answer_bytes == 1024 * 1024
    assert s.core_api_max_answer_bytes == 16 * 1024 * 1024
    assert s.core_api_max_quiet_s == 60
    assert (s.log_format, s.log_level) == ("auto", "info")


def test_environment_and_overrides() -> None:
    env = {
        "GATEWAY_RTB_TIMEOUT_MS": "250",
        "GATEWAY_PORT": "9000",
        "GATEWAY_CORE_API_ALLOW_WRITES": "yes",
        "GATEWAY_REDIS_URL": "redis://r:6379/0",
    }
    s = Settings.from_env(env, port=9100)
    assert s.rtb_timeout_ms == 250
    assert s.port == 9100
    assert s.core_api_allow_writes is True
    assert s.redis_url == Secret("redis://r:6379/0")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_RTB_TIMEOUT_MS", "soon"),
        ("GATEWAY_RTB_TIMEOUT_MS", "0"),
        ("GATEWAY_RTB_TIMEOUT_MS", "-5"),
        ("GATEWAY_RTB_UPSTREAM_URL", "ftp://example.com"),
        ("GATEWAY_RTB_UPSTREAM_URL", "https://example.com/?key=x"),
        ("GATEWAY_REDIS_URL", "http://localhost:6379"),
        ("GATEWAY_SHIELD_SCOPE", "caller"),
        ("GATEWAY_MAX_BODY_BYTES", "12x"),
        ("GATEWAY_CORE_API_ALLOW_WRITES", "maybe"),
        ("GATEWAY_DRAIN_DELAY_S", "nan"),
        ("GATEWAY_LOG_FORMAT", "xml"),
        ("GATEWAY_RTB_MAX_ANSWER_BYTES", "0"),
        ("GATEWAY_RTB_MAX_ANSWER_BYTES", "big"),
        ("GATEWAY_CORE_API_MAX_ANSWER_BYTES", "-1"),
        ("GATEWAY_CORE_API_MAX_QUIET_S", "0"),
        ("GATEWAY_CORE_API_MAX_QUIET_S", "inf"),
    ],
)
def test_bad_values_name_their_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({variable: value})
    assert info.value.variable == variable


def test_secrets_never_print() -> None:
    s = Settings.from_env({"GATEWAY_REDIS_URL": "redis://user:hunter2@redis:6379/0"})
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s.masked())
    assert s.masked()["GATEWAY_REDIS_URL"] == "redis://user:***@redis:6379/0"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("rediss://u:pw@h/0", "rediss://u:***@h/0"),
        ("redis://tokenonly@h:6379", "redis://***@h:6379"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        # redis-py also reads the password from the query, for every scheme.
        ("redis://h/0?password=pw", "redis://h/0?password=***"),
        (
            "rediss://h:6380/0?ssl_cert_reqs=none&password=pw",
            "rediss://h:6380/0?ssl_cert_reqs=none&password=***",
        ),
        ("redis+cluster://h1:1,h2:2/?password=pw", "redis+cluster://h1:1,h2:2/?password=***"),
        (
            "rediss+cluster://h:1/?username=u&password=pw",
            "rediss+cluster://h:1/?username=u&password=***",
        ),
        ("unix:///run/redis.sock?db=0&password=pw", "unix:///run/redis.sock?db=0&password=***"),
        ("redis://h/0?PassWord=pw", "redis://h/0?PassWord=***"),
        ("redis://h/0?%70assword=pw", "redis://h/0?%70assword=***"),
        ("redis://h/0?password=pw#password=pw", "redis://h/0?password=***"),
        ("redis://:a@h/0?password=b", "redis://:***@h/0?password=***"),
        ("redis://:pw@h:notaport/0", "redis://:***@h:notaport/0"),
        ("redis://h/0?db=1", "redis://h/0?db=1"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_prints_masked_settings() -> None:
    result = _cli("check-config", env={"GATEWAY_REDIS_URL": "redis://:s3cr3t-pw@db:6379/0"})
    assert result.returncode == 0, result.stderr
    printed = msgspec.json.decode(result.stdout)
    assert printed["GATEWAY_REDIS_URL"] == "redis://:***@db:6379/0"
    assert printed["GATEWAY_RTB_TIMEOUT_MS"] == 3000
    assert printed["GATEWAY_RTB_MAX_ANSWER_BYTES"] == 1048576
    assert printed["GATEWAY_CORE_API_MAX_ANSWER_BYTES"] == 16777216
    assert printed["GATEWAY_CORE_API_MAX_QUIET_S"] == 60.0
    assert "s3cr3t-pw" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "redis://db:6379/0?password=s3cr3t-pw",
        "rediss://db:6380/0?ssl_cert_reqs=none&password=s3cr3t-pw",
        "redis+cluster://db:7000/?password=s3cr3t-pw",
        "unix:///run/redis.sock?password=s3cr3t-pw",
    ],
)
def test_check_config_masks_a_password_in_the_query(url: str) -> None:
    result = _cli("check-config", env={"GATEWAY_REDIS_URL": url})
    assert result.returncode == 0, result.stderr
    printed = msgspec.json.decode(result.stdout)
    assert printed["GATEWAY_REDIS_URL"] == url.replace("s3cr3t-pw", "***")
    assert "s3cr3t-pw" not in result.stdout + result.stderr


def test_check_config_names_the_bad_variable() -> None:
    result = _cli("check-config", env={"GATEWAY_RTB_TIMEOUT_MS": "fast"})
    assert result.returncode != 0
    assert "GATEWAY_RTB_TIMEOUT_MS" in result.stderr


def test_caller_number_is_required_unless_turned_optional() -> None:
    assert Settings.from_env({}).rtb_caller_number_required
    optional = Settings.from_env({"GATEWAY_RTB_CALLER_NUMBER": "optional"})
    assert not optional.rtb_caller_number_required
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"GATEWAY_RTB_CALLER_NUMBER": "sometimes"})
    assert info.value.variable == "GATEWAY_RTB_CALLER_NUMBER"


def test_the_old_redis_breaker_names_still_work_for_one_release() -> None:
    old = {"GATEWAY_SHIELD_BYPASS_AFTER": "7", "GATEWAY_SHIELD_BYPASS_MS": "250"}
    settings = Settings.from_env(old)
    assert (settings.redis_bypass_after, settings.redis_bypass_ms) == (7, 250)
    # The new name wins when both are set, and only old names in use are deprecated.
    both = Settings.from_env({**old, "GATEWAY_REDIS_BYPASS_AFTER": "9"})
    assert both.redis_bypass_after == 9
    assert deprecations({"GATEWAY_REDIS_BYPASS_MS": "250"}) == []
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"GATEWAY_SHIELD_BYPASS_MS": "0"})
    assert info.value.variable == "GATEWAY_SHIELD_BYPASS_MS"  # the name the operator wrote


def test_check_config_says_which_old_names_are_deprecated() -> None:
    result = _cli("check-config", env={"GATEWAY_SHIELD_BYPASS_AFTER": "7"})
    assert result.returncode == 0, result.stderr
    assert msgspec.json.decode(result.stdout)["GATEWAY_REDIS_BYPASS_AFTER"] == 7
    assert (
        "deprecated: GATEWAY_SHIELD_BYPASS_AFTER is deprecated and will be removed in the next "
        "release: set GATEWAY_REDIS_BYPASS_AFTER instead"
    ) in result.stderr
    assert "GATEWAY_SHIELD_BYPASS_MS" not in result.stderr
