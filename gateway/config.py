"""Settings: read from ``GATEWAY_*`` once at start-up, frozen afterwards.

Everything the gateway can be told lives in :class:`Settings`. It is parsed in one
place (:meth:`Settings.from_env`) so that a bad value is reported by the name of the
environment variable an operator actually typed, and so that no other module reads
``os.environ``. Secrets are wrapped in :class:`Secret`, whose ``repr``/``str`` never
show the value, so a settings object can be logged or printed safely.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import msgspec

from gateway.specs import parse_limits, read_keys_file, split_keys

PREFIX = "GATEWAY_"

DEFAULT_RTB_UPSTREAM_URL = "https://rtb.retreaver.com"
DEFAULT_CORE_API_URL = "https://api.retreaver.com"
DEFAULT_CORE_API_V2_URL = "https://api.retreaver.com"
DEFAULT_DATA_WRITING_URL = "https://retreaverdata.com"


class ConfigError(ValueError):
    """A setting is invalid; ``variable`` is the environment variable to fix."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


class Secret:
    """A string that never prints itself (logs, reprs, tracebacks, check-config)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def mask_url(url: str) -> str:
    """Hide the password (and a bare token-as-username) of a URL, keep the rest readable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None and not (parts.username and "@" in parts.netloc):
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    userinfo = f"{user}:***" if parts.password is not None else "***"
    masked = SplitResult(parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, "")
    return urlunsplit(masked)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The effective configuration. Defaults are the contract's (CONTRACT.md §2)."""

    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 1
    sandbox: bool = False

    rtb_upstream_url: str = DEFAULT_RTB_UPSTREAM_URL
    core_api_url: str = DEFAULT_CORE_API_URL
    core_api_v2_url: str = DEFAULT_CORE_API_V2_URL
    data_writing_url: str = DEFAULT_DATA_WRITING_URL
    redis_url: Secret | None = None

    rtb_timeout_ms: int = 3000
    # "optional": pings without caller_number are accepted (forwarded, never shielded).
    rtb_caller_number: str = "required"
    rtb_max_connections: int = 512
    # An upstream answer over these is refused (502) and its connection dropped.
    rtb_max_answer_bytes: int = 1024 * 1024
    core_api_max_answer_bytes: int = 16 * 1024 * 1024

    shield_scope: str = "key"
    shield_max_ttl_s: int = 3600
    shield_near_cache_size: int = 100_000
    shield_memory_max_entries: int = 1_000_000
    # Shield leases are short and renewed while the holder forwards (gateway/shield/).
    shield_lease_ms: int = 1000
    # After this many consecutive failed Redis calls the shield is bypassed for a while.
    shield_bypass_after: int = 3
    shield_bypass_ms: int = 1000
    redis_timeout_ms: int = 50
    redis_max_connections: int = 128

    max_body_bytes: int = 65536

    core_api_max_concurrency: int = 4
    core_api_timeout_ms: int = 10_000
    core_api_allow_writes: bool = False
    lookup_cache_ttl_s: float = 5.0
    lookup_cache_max_bytes: int = 32 * 1024 * 1024
    core_api_max_retry_wait_s: float = 5.0
    # The longest an upstream 429 quiets the credentials that got it, whatever Retry-After says.
    core_api_max_quiet_s: float = 60.0
    trust_forwarded_headers: bool = False

    # Protections (gateway/protect/): empty rate limit specs and no allowed keys = off.
    rate_limit_per_publisher: str = ""
    rate_limit_per_key: str = ""
    rtb_allowed_keys: Secret | None = None
    rtb_allowed_keys_file: str | None = None
    breaker_failures: int = 20
    breaker_open_s: float = 1.0
    max_in_flight: int = 2048
    max_query_bytes: int = 16384
    max_header_bytes: int = 32768
    # A request must arrive whole, and a client must take its answers, within this.
    client_timeout_s: float = 10.0
    max_connections: int = 10_000

    drain_delay_s: float = 5.0
    log_format: str = "auto"  # text on a terminal, JSON lines otherwise
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Parse ``GATEWAY_*`` variables; ``overrides`` (CLI flags) win over them."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, field_type, default in _fields():
            var = PREFIX + name.upper()
            if name in overrides and overrides[name] is not None:
                values[name] = overrides[name]
                continue
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                values[name] = default
                continue
            values[name] = _coerce(var, raw.strip(), field_type)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Reject values that would make the gateway misbehave, naming the variable."""
        for name in ("rtb_upstream_url", "core_api_url", "core_api_v2_url", "data_writing_url"):
            _check_http_url(PREFIX + name.upper(), getattr(self, name))
        if self.redis_url is not None:
            scheme = urlsplit(self.redis_url.reveal()).scheme
            if scheme not in ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster"):
                raise ConfigError(
                    "GATEWAY_REDIS_URL",
                    "must start with redis://, rediss://, unix:// or redis+cluster://",
                )
        _positive("GATEWAY_PORT", self.port, upper=65535, allow_zero=True)
        _positive("GATEWAY_WORKERS", self.workers, upper=64)
        _positive("GATEWAY_RTB_TIMEOUT_MS", self.rtb_timeout_ms, upper=120_000)
        _positive("GATEWAY_RTB_MAX_CONNECTIONS", self.rtb_max_connections, upper=100_000)
        _positive("GATEWAY_RTB_MAX_ANSWER_BYTES", self.rtb_max_answer_bytes, upper=64 * 1024**2)
        _positive(
            "GATEWAY_CORE_API_MAX_ANSWER_BYTES", self.core_api_max_answer_bytes, upper=1024**3
        )
        _positive("GATEWAY_SHIELD_MAX_TTL_S", self.shield_max_ttl_s, upper=7 * 86400)
        _positive("GATEWAY_SHIELD_NEAR_CACHE_SIZE", self.shield_near_cache_size, allow_zero=True)
        _positive("GATEWAY_SHIELD_MEMORY_MAX_ENTRIES", self.shield_memory_max_entries)
        _positive("GATEWAY_REDIS_TIMEOUT_MS", self.redis_timeout_ms, upper=10_000)
        _positive("GATEWAY_SHIELD_LEASE_MS", self.shield_lease_ms, upper=60_000)
        if self.shield_lease_ms < 100:
            raise ConfigError("GATEWAY_SHIELD_LEASE_MS", "must be at least 100")
        _positive("GATEWAY_SHIELD_BYPASS_AFTER", self.shield_bypass_after, upper=1000)
        _positive("GATEWAY_SHIELD_BYPASS_MS", self.shield_bypass_ms, upper=2000)
        _positive("GATEWAY_REDIS_MAX_CONNECTIONS", self.redis_max_connections, upper=10_000)
        _positive("GATEWAY_MAX_BODY_BYTES", self.max_body_bytes, upper=64 * 1024 * 1024)
        _positive("GATEWAY_CORE_API_MAX_CONCURRENCY", self.core_api_max_concurrency, upper=1000)
        _positive("GATEWAY_CORE_API_TIMEOUT_MS", self.core_api_timeout_ms, upper=300_000)
        _positive("GATEWAY_LOOKUP_CACHE_TTL_S", self.lookup_cache_ttl_s, allow_zero=True)
        _positive("GATEWAY_LOOKUP_CACHE_MAX_BYTES", self.lookup_cache_max_bytes)
        _positive(
            "GATEWAY_CORE_API_MAX_RETRY_WAIT_S", self.core_api_max_retry_wait_s, allow_zero=True
        )
        _positive("GATEWAY_CORE_API_MAX_QUIET_S", self.core_api_max_quiet_s, upper=3600)
        _positive("GATEWAY_DRAIN_DELAY_S", self.drain_delay_s, allow_zero=True, upper=3600)
        self._validate_protections()
        if self.rtb_caller_number not in ("required", "optional"):
            raise ConfigError("GATEWAY_RTB_CALLER_NUMBER", "must be 'required' or 'optional'")
        if self.shield_scope not in ("key", "publisher"):
            raise ConfigError("GATEWAY_SHIELD_SCOPE", "must be 'key' or 'publisher'")
        if self.log_format not in ("auto", "json", "text"):
            raise ConfigError("GATEWAY_LOG_FORMAT", "must be 'auto', 'json' or 'text'")
        if self.log_level not in ("debug", "info", "warning", "error", "critical"):
            raise ConfigError(
                "GATEWAY_LOG_LEVEL", "must be one of debug, info, warning, error, critical"
            )

    def _validate_protections(self) -> None:
        for var, spec, overrides in (
            ("GATEWAY_RATE_LIMIT_PER_PUBLISHER", self.rate_limit_per_publisher, True),
            ("GATEWAY_RATE_LIMIT_PER_KEY", self.rate_limit_per_key, False),
        ):
            try:
                parse_limits(spec, overrides_allowed=overrides)
            except ValueError as exc:
                raise ConfigError(var, str(exc)) from None
        if self.rtb_allowed_keys is not None and not split_keys(self.rtb_allowed_keys.reveal()):
            raise ConfigError("GATEWAY_RTB_ALLOWED_KEYS", "holds no keys")
        if self.rtb_allowed_keys_file:
            try:
                keys = read_keys_file(self.rtb_allowed_keys_file)
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    "GATEWAY_RTB_ALLOWED_KEYS_FILE", f"cannot read it: {type(exc).__name__}"
                ) from None
            if not keys:
                raise ConfigError("GATEWAY_RTB_ALLOWED_KEYS_FILE", "holds no keys")
        _positive("GATEWAY_BREAKER_FAILURES", self.breaker_failures, allow_zero=True, upper=100_000)
        _positive("GATEWAY_BREAKER_OPEN_S", self.breaker_open_s, upper=600)
        _positive("GATEWAY_MAX_IN_FLIGHT", self.max_in_flight, upper=1_000_000)
        _positive("GATEWAY_MAX_QUERY_BYTES", self.max_query_bytes, upper=1024 * 1024)
        _positive("GATEWAY_MAX_HEADER_BYTES", self.max_header_bytes, upper=1024 * 1024)
        if self.max_header_bytes < 1024:
            raise ConfigError("GATEWAY_MAX_HEADER_BYTES", "must be at least 1024")
        _positive("GATEWAY_CLIENT_TIMEOUT_S", self.client_timeout_s, upper=3600)
        _positive("GATEWAY_MAX_CONNECTIONS", self.max_connections, upper=1_000_000)

    @property
    def rtb_caller_number_required(self) -> bool:
        return self.rtb_caller_number != "optional"

    @property
    def rtb_timeout_s(self) -> float:
        return self.rtb_timeout_ms / 1000

    @property
    def redis_timeout_s(self) -> float:
        return self.redis_timeout_ms / 1000

    def masked(self) -> dict[str, Any]:
        """The settings as plain data with every secret masked (for check-config and logs)."""
        out: dict[str, Any] = {}
        for name, _, _ in _fields():
            value = getattr(self, name)
            if isinstance(value, Secret):
                # A URL keeps its readable parts; any other secret (a key list) is hidden.
                raw = value.reveal()
                value = mask_url(raw) if "://" in raw else "***"
            elif isinstance(value, str) and "://" in value:
                value = mask_url(value)
            out[PREFIX + name.upper()] = value
        return out


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _fields() -> list[tuple[str, Any, Any]]:
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)
    return [(f.name, f.type, f.default) for f in info.fields]


def _coerce(var: str, raw: str, field_type: msgspec.inspect.Type) -> Any:
    inner = field_type
    if isinstance(inner, msgspec.inspect.UnionType):
        inner = next(t for t in inner.types if not isinstance(t, msgspec.inspect.NoneType))
    if isinstance(inner, msgspec.inspect.BoolType):
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(var, f"expected true or false, got {raw!r}")
    if isinstance(inner, msgspec.inspect.IntType):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(var, f"expected a whole number, got {raw!r}") from None
    if isinstance(inner, msgspec.inspect.FloatType):
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(var, f"expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise ConfigError(var, f"expected a finite number, got {raw!r}")
        return value
    if isinstance(inner, msgspec.inspect.CustomType) and inner.cls is Secret:
        return Secret(raw)
    return raw


def _positive(
    var: str, value: float, *, upper: float | None = None, allow_zero: bool = False
) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(var, f"must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    if upper is not None and value > upper:
        raise ConfigError(var, f"must be at most {upper}, got {value}")


def _check_http_url(var: str, url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError(var, "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(var, "must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ConfigError(var, "must not carry a query string or fragment")
