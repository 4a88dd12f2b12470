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
import re
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import unquote_plus, urlsplit

import msgspec
from msgspec import Meta

from gateway.protect.rules import parse_limits, read_keys_file, split_keys

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


# Query parameters that carry a credential in the URL forms the gateway accepts: redis-py
# reads ``?password=`` (and ``?username=``) as it reads ``redis://user:pw@host``.
SECRET_QUERY_NAMES = frozenset(
    {"password", "passwd", "pass", "pwd", "secret", "token", "auth", "api_key", "access_token"}
)


def mask_url(url: str) -> str:
    """Hide the password (and a bare token-as-username) of a URL, keep the rest readable.

    A password may sit in the userinfo (``redis://:pw@host``) or in the query
    (``redis://host/0?password=pw``, which redis-py accepts for every scheme, ``unix://``
    included): both are shown as ``***``. Parsed by hand around the last ``@`` so a
    cluster's ``host1:1,host2:2`` or a bad port does not make the masking itself fail.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if colon else f"***@{hostport}"
    query = _mask_query(parts.query)
    if netloc == parts.netloc and query == parts.query and not parts.fragment:
        return url
    # By hand, not urlunsplit: that drops the empty host of ``unix:///path``.
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _mask_query(query: str) -> str:
    """``a=1&password=pw`` → ``a=1&password=***``; names compared unquoted, any case."""
    if not query:
        return query
    pairs = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        if eq and unquote_plus(name).strip().lower() in SECRET_QUERY_NAMES:
            pair = f"{name}=***"
        pairs.append(pair)
    return "&".join(pairs)


# Settings renamed because the old name misled: new name -> old name. The old name still
# works for one release (the new one wins when both are set); deprecations() names each
# one in use, for check-config and the start-up log.
RENAMED = {
    # They govern the one Redis breaker every Redis user shares (shield, rate limits,
    # lookup cache), not the shield alone.
    "GATEWAY_REDIS_BYPASS_AFTER": "GATEWAY_SHIELD_BYPASS_AFTER",
    "GATEWAY_REDIS_BYPASS_MS": "GATEWAY_SHIELD_BYPASS_MS",
}


def deprecations(env: Mapping[str, str] | None = None) -> list[str]:
    """One line per old setting name set in ``env``: what to call it now."""
    env = os.environ if env is None else env
    return [
        f"{old} is deprecated and will be removed in the next release: set {new} instead"
        for new, old in RENAMED.items()
        if env.get(old, "").strip()
    ]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The effective configuration: the one source of every setting.

    Each field is one ``GATEWAY_<NAME>`` variable with its default, its bounds (``Meta``
    ``ge``/``gt``/``le``), its choices (``Literal``) and a one-line description. The
    checks in :meth:`validate`, ``gateway check-config --describe``, the settings
    reference in the docs and the Helm chart's config values and schema are all derived
    from these declarations (``python -m gateway.cli.settings_doc``), so they cannot drift.
    """

    host: Annotated[str, Meta(description="address to listen on (`--host`)")] = "0.0.0.0"
    port: Annotated[int, Meta(ge=0, le=65535, description="port to listen on (`--port`)")] = 8080
    workers: Annotated[
        int, Meta(ge=1, le=64, description="worker processes per replica (`--workers`)")
    ] = 1
    sandbox: Annotated[
        bool, Meta(description="run against the built-in Retreaver sandbox (`--sandbox`)")
    ] = False

    rtb_upstream_url: Annotated[
        str, Meta(description="where pings are forwarded (`/rtbs.json` is appended)")
    ] = DEFAULT_RTB_UPSTREAM_URL
    core_api_url: Annotated[str, Meta(description="the Core API: v1 and `/api/v1/reports`")] = (
        DEFAULT_CORE_API_URL
    )
    core_api_v2_url: Annotated[
        str, Meta(description="the Core API v2, v3, v4 and caller lists (`/api/v2/...`)")
    ] = DEFAULT_CORE_API_V2_URL
    data_writing_url: Annotated[
        str, Meta(description="call data writing (`/data_writing` is appended)")
    ] = DEFAULT_DATA_WRITING_URL
    redis_url: Annotated[
        Secret | None,
        Meta(
            description="`redis://`, `rediss://`, `unix://` or `redis+cluster://`; "
            "unset: an in-process shield store (one replica)"
        ),
    ] = None

    rtb_timeout_ms: Annotated[
        int,
        Meta(ge=1, le=120_000, description="total budget for one ping, from arrival to answer"),
    ] = 3000
    rtb_caller_number: Annotated[
        Literal["required", "optional"],
        Meta(
            description="`optional`: accept pings without `caller_number` "
            "(forwarded every time, unshielded, `X-Shield: none`)"
        ),
    ] = "required"
    rtb_max_connections: Annotated[
        int, Meta(ge=1, le=100_000, description="size of the pooled RTB upstream connections")
    ] = 512
    rtb_max_answer_bytes: Annotated[
        int,
        Meta(
            ge=1,
            le=64 * 1024**2,
            description="largest RTB answer read; over it: 502 and the connection dropped",
        ),
    ] = 1024 * 1024
    core_api_max_answer_bytes: Annotated[
        int,
        Meta(
            ge=1,
            le=1024**3,
            description="largest Core API answer read; over it: 502 and the connection dropped",
        ),
    ] = 16 * 1024 * 1024

    shield_scope: Annotated[
        Literal["key", "publisher"],
        Meta(
            description="`key`: shield per (RTB key, caller); "
            "`publisher`: per (RTB key, publisher, caller)"
        ),
    ] = "key"
    shield_max_ttl_s: Annotated[
        int, Meta(ge=1, le=7 * 86400, description="upper bound on how long a bid is shielded")
    ] = 3600
    shield_near_cache_size: Annotated[
        int,
        Meta(ge=0, description="shielded answers kept in process in front of Redis (0: off)"),
    ] = 100_000
    shield_near_cache_ttl_ms: Annotated[
        int,
        Meta(
            ge=1,
            le=60_000,
            description="how long a near-cached answer is trusted without asking Redis again "
            "(the bound on replicas disagreeing after Redis loses or evicts a bid)",
        ),
    ] = 1000
    shield_memory_max_entries: Annotated[
        int,
        Meta(
            ge=1,
            description="cap of the in-process shield store (least recently used go first; "
            "about 1 kB each: 200,000 fit the chart's 512Mi with room to spare)",
        ),
    ] = 200_000
    shield_lease_ms: Annotated[
        int,
        Meta(
            ge=100,
            le=60_000,
            description="lease of the one request forwarding a caller; renewed while it "
            "forwards, so a dead holder is replaced within this",
        ),
    ] = 1000
    redis_bypass_after: Annotated[
        int,
        Meta(
            ge=1,
            le=1000,
            description="consecutive failed Redis calls (shield, rate limits, lookup cache) "
            "after which Redis is skipped",
        ),
    ] = 3
    redis_bypass_ms: Annotated[
        int,
        Meta(ge=1, le=2000, description="how long Redis is skipped before it is probed again"),
    ] = 1000
    redis_timeout_ms: Annotated[
        int,
        Meta(
            ge=1,
            le=10_000,
            description="deadline of every Redis call on the ping path (connecting included)",
        ),
    ] = 50
    redis_max_connections: Annotated[
        int,
        Meta(
            ge=1,
            le=10_000,
            description="size of the redis-py pool (pub/sub, rate limits, lookup cache)",
        ),
    ] = 128

    max_body_bytes: Annotated[
        int, Meta(ge=1, le=64 * 1024 * 1024, description="larger request bodies get 413")
    ] = 65536

    core_api_max_concurrency: Annotated[
        int,
        Meta(ge=1, le=1000, description="most lookups in flight to the Core API, per replica"),
    ] = 4
    core_api_timeout_ms: Annotated[
        int, Meta(ge=1, le=300_000, description="budget for one Core API request")
    ] = 10_000
    core_api_allow_writes: Annotated[
        bool, Meta(description="forward the Core API's write routes instead of answering 405")
    ] = False
    lookup_cache_ttl_s: Annotated[
        float, Meta(ge=0, description="how long a lookup answer is cached (0: no caching)")
    ] = 5.0
    lookup_cache_max_bytes: Annotated[
        int,
        Meta(ge=1, description="bytes the in-process lookup cache (without Redis) may hold"),
    ] = 32 * 1024 * 1024
    core_api_max_retry_wait_s: Annotated[
        float,
        Meta(ge=0, description="longest `Retry-After` waited out before a 429 is passed on"),
    ] = 5.0
    core_api_max_quiet_s: Annotated[
        float,
        Meta(
            gt=0,
            le=3600,
            description="longest an upstream 429 quiets the credentials that got it, "
            "whatever its `Retry-After`",
        ),
    ] = 60.0
    trust_forwarded_headers: Annotated[
        bool,
        Meta(
            description="build `Link` URLs from `X-Forwarded-Host`/`-Proto` "
            "(only behind a proxy you trust)"
        ),
    ] = False

    rate_limit_per_publisher: Annotated[
        str,
        Meta(
            description="`COUNT/UNIT[:BURST]` default plus per-publisher overrides, e.g. "
            "`50/s, acme=500/s:1000, trusted=off`; unset: no limit"
        ),
    ] = ""
    rate_limit_per_key: Annotated[
        str, Meta(description="one `COUNT/UNIT[:BURST]` rate for every RTB key; unset: no limit")
    ] = ""
    rtb_allowed_keys: Annotated[
        Secret | None,
        Meta(description="comma list of accepted RTB keys; others get 403; unset: all"),
    ] = None
    rtb_allowed_keys_file: Annotated[
        str | None,
        Meta(description="a file of accepted RTB keys, one per line; unset: all"),
    ] = None
    breaker_failures: Annotated[
        int,
        Meta(
            ge=0,
            le=100_000,
            description="consecutive upstream failures that open the breaker (fast 503)",
        ),
    ] = 20
    breaker_open_s: Annotated[
        float, Meta(gt=0, le=600, description="how often an open breaker lets one probe through")
    ] = 1.0
    max_in_flight: Annotated[
        int,
        Meta(
            ge=1,
            le=1_000_000,
            description="requests in flight per replica before new ones get a fast 503",
        ),
    ] = 2048
    max_query_bytes: Annotated[
        int, Meta(ge=1, le=1024 * 1024, description="longer query strings get 414")
    ] = 16384
    max_header_bytes: Annotated[
        int, Meta(ge=1024, le=1024 * 1024, description="larger request heads get 431")
    ] = 32768
    client_timeout_s: Annotated[
        float,
        Meta(
            gt=0,
            le=3600,
            description="a request whose head and body have not arrived by then gets 408, "
            "and a client that leaves an answer unread that long is reset",
        ),
    ] = 10.0
    max_connections: Annotated[
        int,
        Meta(
            ge=1,
            le=1_000_000,
            description="open client connections per replica before new ones get 503",
        ),
    ] = 10_000
    ops_refresh_ms: Annotated[
        int,
        Meta(
            ge=0,
            le=60_000,
            description="under a flood, `/stats` and `/metrics` are rebuilt at most once per "
            "this (after a few fresh builds); 0: built on every request",
        ),
    ] = 1000
    ops_max_rps: Annotated[
        float,
        Meta(gt=0, le=100_000, description="`/stats` and `/metrics` requests let through a second"),
    ] = 20.0
    ops_max_waiting: Annotated[
        int,
        Meta(
            ge=0,
            le=100_000,
            description="`/stats` and `/metrics` requests waiting for a slot before more get 503",
        ),
    ] = 32

    auctions_file: Annotated[
        str | None,
        Meta(description="the auctions file (TOML, or JSON by its `.json` ending); unset: none"),
    ] = None
    auctions_reload_s: Annotated[
        float,
        Meta(
            ge=0,
            le=3600,
            description="how often the auctions file is checked for changes (0: on SIGHUP only)",
        ),
    ] = 2.0
    auction_routes_max_entries: Annotated[
        int,
        Meta(
            ge=1,
            le=10**8,
            description="auction winners remembered in process for confirms (without Redis)",
        ),
    ] = 100_000
    auction_late_legs_max: Annotated[
        int,
        Meta(
            ge=1,
            le=1_000_000,
            description="auction legs still followed after their auction answered",
        ),
    ] = 1024

    ledger_url: Annotated[
        Secret | None,
        Meta(
            description="`postgresql://` URL of the ping ledger, shared by every replica; "
            "unset: in process (one replica)"
        ),
    ] = None
    ledger_secret: Annotated[
        Secret | None,
        Meta(
            description="HMAC key of the ledger's caller digests (16+ characters); "
            "unset: random per start"
        ),
    ] = None
    ledger_queue_max: Annotated[
        int,
        Meta(
            ge=1,
            le=10_000_000,
            description="events waiting to be written; more are dropped and counted",
        ),
    ] = 100_000
    ledger_memory_max_events: Annotated[
        int,
        Meta(ge=1, le=10_000_000, description="events the in-process ledger keeps (newest)"),
    ] = 100_000
    ledger_memory_max_rollups: Annotated[
        int,
        Meta(
            ge=1,
            le=10_000_000,
            description="publisher × sub-ID × hour analytics rows the in-process ledger keeps "
            "(the oldest make room)",
        ),
    ] = 100_000
    analytics_max_rows: Annotated[
        int,
        Meta(
            ge=1,
            le=1_000_000,
            description="most rows one `/admin/publishers.json` or `.csv` answer carries "
            "(more: the answer says `truncated`)",
        ),
    ] = 10_000
    ledger_retention_days: Annotated[
        int,
        Meta(ge=1, le=3650, description="days of PostgreSQL ledger partitions kept"),
    ] = 90
    ledger_timeout_ms: Annotated[
        int,
        Meta(ge=1, le=600_000, description="deadline of each PostgreSQL call of the ledger"),
    ] = 5000
    ledger_flush_timeout_s: Annotated[
        float,
        Meta(gt=0, le=3600, description="on SIGTERM, how long the ledger's queue may flush"),
    ] = 10.0
    sub_id_tag: Annotated[
        str,
        Meta(description="the tag whose value is a ping's sub-ID in the ledger and analytics"),
    ] = "sub_id"
    admin_token: Annotated[
        Secret | None,
        Meta(
            description="Bearer token of the `/admin/` routes (16+ characters); "
            "unset: loopback clients only"
        ),
    ] = None
    reconcile_api_key: Annotated[
        Secret | None,
        Meta(
            description="Core API `api_key` reconciliation reads calls with; unset: no "
            "reconciliation (`--sandbox`: the sandbox's own)"
        ),
    ] = None
    reconcile_company_id: Annotated[
        str | None,
        Meta(description="the company whose calls are reconciled, when the key sees several"),
    ] = None
    reconcile_interval_s: Annotated[
        float,
        Meta(ge=1, le=86_400, description="seconds between reconciliation passes"),
    ] = 60.0
    reconcile_grace_s: Annotated[
        float,
        Meta(
            ge=0,
            le=86_400,
            description="seconds after `expires_at` a call still counts (as `late_call`)",
        ),
    ] = 120.0
    reconcile_overlap_s: Annotated[
        float,
        Meta(
            ge=0,
            le=86_400,
            description="seconds before the watermark each pass re-reads, for calls the "
            "Core API shows late",
        ),
    ] = 300.0
    confirm_guard: Annotated[
        Literal["off", "shadow", "on"],
        Meta(
            description="refuse confirms of publishers whose confirms go uncalled: `shadow` "
            "only counts what it would refuse"
        ),
    ] = "shadow"
    confirm_guard_window: Annotated[
        int,
        Meta(ge=1, le=10_000, description="a publisher's last settled confirms the guard weighs"),
    ] = 50
    confirm_guard_min_rate: Annotated[
        float,
        Meta(ge=0, le=1, description="the confirm→call rate under which the guard refuses"),
    ] = 0.2
    sandbox_call_rate: Annotated[
        float,
        Meta(ge=0, le=1, description="share of sandbox reservations its callers call"),
    ] = 0.6

    drain_delay_s: Annotated[
        float,
        Meta(
            ge=0,
            le=3600,
            description="after SIGTERM, how long `/readyz` reports 503 while still serving",
        ),
    ] = 5.0
    log_format: Annotated[
        Literal["auto", "json", "text"],
        Meta(description="`auto`: text when stdout and stderr are terminals, JSON lines otherwise"),
    ] = "auto"
    log_level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"],
        Meta(description="the lowest level logged"),
    ] = "info"
    access_log_sample: Annotated[
        float,
        Meta(
            ge=0,
            le=1,
            description="share of 2xx access lines kept (sampling); 4xx and 5xx are always logged",
        ),
    ] = 1.0
    access_log_buffer_bytes: Annotated[
        int,
        Meta(
            ge=4096,
            le=1024**3,
            description="access lines that may wait for a slow log reader; past it they are "
            "dropped and counted",
        ),
    ] = 1024 * 1024
    hit_lane: Annotated[
        bool,
        Meta(
            description="answer shield hits held in memory from the HTTP protocol, without "
            "the ASGI stack (same answer, metrics, logs and ledger event; off: the ASGI way)"
        ),
    ] = True

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
            old = RENAMED.get(var)
            if (raw is None or raw.strip() == "") and old is not None:
                var, raw = old, env.get(old)
            if raw is None or raw.strip() == "":
                values[name] = default
                continue
            values[name] = _coerce(var, raw.strip(), field_type)
        settings = cls(**values)
        try:
            settings.validate()
        except ConfigError as exc:
            # Name the variable the operator wrote, the old one if that is what is set.
            written = RENAMED.get(exc.variable)
            if written is not None and not env.get(exc.variable, "").strip() and env.get(written):
                raise ConfigError(written, exc.message) from None
            raise
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
        for spec in setting_specs():
            spec.check(getattr(self, spec.name))
        self._validate_protections()
        if self.auctions_file is not None and not os.path.isfile(self.auctions_file):
            raise ConfigError("GATEWAY_AUCTIONS_FILE", "is not a readable file")
        self._validate_ledger()

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

    def _validate_ledger(self) -> None:
        if self.ledger_url is not None:
            parts = urlsplit(self.ledger_url.reveal())
            if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
                raise ConfigError(
                    "GATEWAY_LEDGER_URL", "must be a postgresql:// URL with a host (or unset)"
                )
        if self.ledger_secret is not None and len(self.ledger_secret.reveal()) < 16:
            raise ConfigError("GATEWAY_LEDGER_SECRET", "must be at least 16 characters")
        if self.admin_token is not None and len(self.admin_token.reveal()) < 16:
            raise ConfigError("GATEWAY_ADMIN_TOKEN", "must be at least 16 characters")
        if self.reconcile_company_id is not None and not re.fullmatch(
            r"[0-9]{1,20}", self.reconcile_company_id
        ):
            raise ConfigError("GATEWAY_RECONCILE_COMPANY_ID", "must be a company id (digits)")
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", self.sub_id_tag):
            raise ConfigError(
                "GATEWAY_SUB_ID_TAG", "must be a tag name: 1-64 letters, digits, '_', '-' or '.'"
            )

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


class SettingSpec(msgspec.Struct, frozen=True):
    """One setting as declared on :class:`Settings`: what every derived view is built from."""

    name: str
    variable: str
    kind: str  # "int", "float", "bool", "str", "choice" or "secret"
    default: Any
    description: str
    optional: bool = False  # None (unset) is a legal value
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: Any) -> None:
        """Raise ConfigError, naming the variable, when ``value`` breaks the declaration."""
        if value is None:
            return
        if self.choices and value not in self.choices:
            if len(self.choices) == 2:
                allowed = f"'{self.choices[0]}' or '{self.choices[1]}'"
            else:
                allowed = "one of " + ", ".join(self.choices)
            raise ConfigError(self.variable, f"must be {allowed}, got {value!r}")
        if self.gt is not None and not value > self.gt:
            raise ConfigError(self.variable, f"must be > {_num(self.gt)}, got {value}")
        if self.ge is not None and not value >= self.ge:
            if self.ge == 1 and self.kind == "int":
                raise ConfigError(self.variable, f"must be > 0, got {value}")
            if self.ge == 0:
                raise ConfigError(self.variable, f"must be >= 0, got {value}")
            raise ConfigError(self.variable, f"must be at least {_num(self.ge)}, got {value}")
        if self.le is not None and value > self.le:
            raise ConfigError(self.variable, f"must be at most {_num(self.le)}, got {value}")


def setting_specs() -> tuple[SettingSpec, ...]:
    """Every field of :class:`Settings`, in declaration order, as a :class:`SettingSpec`."""
    return _SPECS


def _num(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _spec(field: msgspec.inspect.Field) -> SettingSpec:
    declared = field.type
    description = ""
    if isinstance(declared, msgspec.inspect.Metadata):
        description = (declared.extra_json_schema or {}).get("description", "")
        declared = declared.type
    optional = False
    if isinstance(declared, msgspec.inspect.UnionType):
        optional = any(isinstance(t, msgspec.inspect.NoneType) for t in declared.types)
        declared = next(t for t in declared.types if not isinstance(t, msgspec.inspect.NoneType))
    bounds: dict[str, Any] = {}
    choices: tuple[str, ...] = ()
    if isinstance(declared, msgspec.inspect.BoolType):
        kind = "bool"
    elif isinstance(declared, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        kind = "int" if isinstance(declared, msgspec.inspect.IntType) else "float"
        bounds = {"ge": declared.ge, "gt": declared.gt, "le": declared.le}
    elif isinstance(declared, msgspec.inspect.LiteralType):
        # msgspec sorts a Literal's values; the declaration's order reads better in docs.
        hint = typing.get_type_hints(Settings, include_extras=True)[field.name]
        kind, choices = "choice", typing.get_args(typing.get_args(hint)[0])
    elif isinstance(declared, msgspec.inspect.CustomType) and declared.cls is Secret:
        kind = "secret"
    else:
        kind = "str"
    return SettingSpec(
        name=field.name,
        variable=PREFIX + field.name.upper(),
        kind=kind,
        default=field.default,
        description=description,
        optional=optional,
        choices=choices,
        **bounds,
    )


def _fields() -> list[tuple[str, SettingSpec, Any]]:
    return [(spec.name, spec, spec.default) for spec in _SPECS]


def _coerce(var: str, raw: str, spec: SettingSpec) -> Any:
    if spec.kind == "bool":
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(var, f"expected true or false, got {raw!r}")
    if spec.kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(var, f"expected a whole number, got {raw!r}") from None
    if spec.kind == "float":
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(var, f"expected a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise ConfigError(var, f"expected a finite number, got {raw!r}")
        return value
    if spec.kind == "secret":
        return Secret(raw)
    return raw


def _check_http_url(var: str, url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError(var, "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(var, "must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ConfigError(var, "must not carry a query string or fragment")


_SPECS: tuple[SettingSpec, ...] = tuple(
    _spec(f)
    for f in msgspec.inspect.type_info(Settings).fields  # type: ignore[attr-defined]
)
