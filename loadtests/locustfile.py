"""Publisher and Core API traffic against the gateway, for Locust (``FastHttpUser``).

Why it looks like this: the gateway's promises are about *mixed* traffic. A publisher
pings for new callers (forwarded once), pings again for the same caller (answered by the
shield), fires concurrent duplicates (coalesced into one upstream request), confirms
reservations, and sometimes sends garbage (refused, never forwarded). Operators' scripts
meanwhile page through the Core API. Each kind is a weighted task so the mix is a knob,
and each checks the answer against the contract, not just the status code.

Everything a request sends is built once at start-up (phone numbers, tags, encodings),
so Locust's CPU goes to sending, not to formatting. At the end the file writes a JSON
summary (``LOADTEST_SUMMARY``): the shield keys of the valid pings it sent (attempted,
and answered), ``X-Shield``
counts per kind, whether repeats and bursts kept one reservation, and what the Core API
answered, which ``loadtests/run`` compares with what the upstream actually received.

Locust is closed-loop: a user waits for each answer before sending the next request, so
a slow gateway lowers the offered load and Locust's own percentiles understate the tail.
``loadtests/run`` takes p99 from the gateway's histogram for that reason.

Knobs (environment):

``LOADTEST_MIX``              task weights, default
                              ``unique=40,repeat=35,burst=5,confirm=10,invalid=10``
``LOADTEST_REPEAT_CALLERS``   callers the repeat task cycles through (default 200)
``LOADTEST_BURST_SIZE``       concurrent duplicates per burst (default 8)
``LOADTEST_UNIQUE_POOL``      fresh callers generated at start-up (default 100,000); if a
                              long run uses them up, more are made on the fly (counted)
``LOADTEST_USER_RPS``         task executions per second per user; 0 = no pause (default)
``LOADTEST_RTB_KEYS``         comma-separated RTB keys (campaigns) to spread pings over
``LOADTEST_CORE_API``         ``optional`` (default: a 404 "no such route" from the gateway
                              counts as success, for gateways without the Core API routes),
                              ``required``, or ``off`` (no lookup users)
``LOADTEST_PUBLISHER_WEIGHT`` / ``LOADTEST_LOOKUP_WEIGHT``  user class weights (10 / 1)
``LOADTEST_API_KEY`` / ``LOADTEST_COMPANY_ID``  Core API credentials (the reference's
                              ``woofwoofwoof`` / ``1``)
``LOADTEST_SEED``             makes the generated traffic reproducible
``LOADTEST_SUMMARY``          where to write the JSON summary (nothing written if unset)
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import msgspec
from gevent.pool import Group
from locust import FastHttpUser, constant, constant_throughput, events, task
from locust.exception import StopUser


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _mix(raw: str) -> dict[str, int]:
    out = {"unique": 0, "repeat": 0, "burst": 0, "confirm": 0, "invalid": 0}
    for part in raw.split(","):
        if not part.strip():
            continue
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in out:
            raise ValueError(f"LOADTEST_MIX: unknown kind {name!r} (known: {', '.join(out)})")
        out[name] = int(weight)
    if not any(out.values()):
        raise ValueError("LOADTEST_MIX: every weight is zero")
    return out


MIX = _mix(os.environ.get("LOADTEST_MIX", "unique=40,repeat=35,burst=5,confirm=10,invalid=10"))
REPEAT_CALLERS = _env_int("LOADTEST_REPEAT_CALLERS", 200)
BURST_SIZE = _env_int("LOADTEST_BURST_SIZE", 8)
UNIQUE_POOL = _env_int("LOADTEST_UNIQUE_POOL", 100_000)
USER_RPS = _env_float("LOADTEST_USER_RPS", 0.0)
RTB_KEYS = [
    k.strip()
    for k in os.environ.get(
        "LOADTEST_RTB_KEYS",
        "7fc40342-f0a0-4e8f-bf09-b3887eedcb4a,3b1f0c9e-5d2a-4f6b-9c1e-2a7d8e4f6b10,"
        "a9e2d4c6-1b3f-4a5e-8d7c-6f0e2b4a9c31",
    ).split(",")
    if k.strip()
]
CORE_API_MODE = os.environ.get("LOADTEST_CORE_API", "optional").strip().lower()
if CORE_API_MODE not in ("optional", "required", "off"):
    raise ValueError("LOADTEST_CORE_API must be optional, required or off")
API_KEY = os.environ.get("LOADTEST_API_KEY", "woofwoofwoof")
COMPANY_ID = os.environ.get("LOADTEST_COMPANY_ID", "1")
SEED = _env_int("LOADTEST_SEED", int(time.time() * 1000) ^ os.getpid())
SUMMARY_PATH = os.environ.get("LOADTEST_SUMMARY", "")

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode

# -- callers ------------------------------------------------------------------------------

# Area codes libphonenumber accepts with any exchange 200-999: every generated number is
# valid, so a 4xx on a "valid" ping is the gateway's fault, never the generator's.
AREA_CODES = (
    "212", "213", "305", "312", "404", "415", "512", "617",
    "702", "713", "720", "818", "917", "206", "303",
)  # fmt: skip


def caller_e164(n: int) -> str:
    """The ``n``-th caller number of this run, in E.164 (distinct for distinct ``n``)."""
    area = AREA_CODES[n % len(AREA_CODES)]
    rest = n // len(AREA_CODES)
    exchange = 200 + (rest // 10_000) % 800
    return f"+1{area}{exchange:03d}{rest % 10_000:04d}"


def shown_as(e164: str, style: int) -> str:
    """How publishers actually write numbers; the gateway normalises all of them."""
    national = e164[2:]
    if style == 0:
        return e164
    if style == 1:
        return national
    if style == 2:
        return f"({national[:3]}) {national[3:6]}-{national[6:]}"
    return f"1-{national[:3]}-{national[3:6]}-{national[6:]}"


# -- realistic tags -----------------------------------------------------------------------

STATES_BY_AREA = {
    "212": "NY", "213": "CA", "305": "FL", "312": "IL", "404": "GA", "415": "CA",
    "512": "TX", "617": "MA", "702": "NV", "713": "TX", "720": "CO", "818": "CA",
    "917": "NY", "206": "WA", "303": "CO",
}  # fmt: skip
UTM_SOURCES = ("google", "facebook", "bing", "taboola", "outbrain", "tiktok", "newsletter")
VERTICALS = ("medicare", "final_expense", "auto_insurance", "home_services", "debt_relief")
DEVICES = ("mobile", "desktop", "tablet")
PUBLISHERS = [f"pub_{1000 + i}" for i in range(24)]


def _tags(rng: random.Random, e164: str, kind: str) -> dict[str, Any]:
    vertical = rng.choice(VERTICALS)
    tags: dict[str, Any] = {
        "caller_zip": f"{rng.randint(10_000, 99_999)}",
        "caller_state": STATES_BY_AREA[e164[2:5]],
        "utm_source": rng.choice(UTM_SOURCES),
        "utm_campaign": f"{vertical}_{rng.choice(('q1', 'q2', 'q3', 'q4'))}_2026",
        "vertical": vertical,
        "lt_kind": kind,  # lets the runner prove invalid pings never reach the upstream
    }
    extra = {
        "age": rng.randint(21, 89),
        "sub_id": f"s{rng.randint(1, 500)}",
        "lead_id": f"{rng.getrandbits(64):016x}",
        "device": rng.choice(DEVICES),
        "tcpa_consent": True,
        "landing_page": f"https://quotes.example.com/{vertical}?v={rng.randint(1, 9)}",
        "ip": f"203.0.113.{rng.randint(1, 254)}",
    }
    for name in rng.sample(list(extra), rng.randint(1, len(extra))):
        tags[name] = extra[name]
    return tags


# -- prebuilt requests --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    path: str
    body: bytes | None
    headers: dict[str, str]
    shield_key: str  # "<rtb key>|<E.164 caller>", what the upstream must see exactly once
    rtb_key: str


JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
BARE_HEADERS = {"Accept": "application/json"}


def build_ping(rng: random.Random, n: int, kind: str) -> Ping:
    e164 = caller_e164(n)
    key = RTB_KEYS[n % len(RTB_KEYS)]
    publisher_field = "source_id" if rng.random() < 0.1 else "publisher_id"
    fields: dict[str, Any] = {
        "key": key,
        publisher_field: rng.choice(PUBLISHERS),
        "caller_number": shown_as(e164, rng.randrange(4)),
    }
    if rng.random() < 0.2:
        fields["inbound_number"] = caller_e164(n + 7_777_777)
    fields.update(_tags(rng, e164, kind))
    encoding = rng.random()
    if encoding < 0.4:
        body, headers, path = _encode(fields), JSON_HEADERS, "/rtbs.json"
    elif encoding < 0.8:
        # Retreaver's own example: everything in the query string, '+' left unencoded.
        parts = []
        for name, value in fields.items():
            text = _scalar(value)
            if name == "caller_number" and text.startswith("+"):
                parts.append(f"caller_number=+{quote(text[1:], safe='')}")
            else:
                parts.append(f"{quote(name, safe='')}={quote(text, safe='')}")
        body, headers, path = None, BARE_HEADERS, "/rtbs.json?" + "&".join(parts)
    else:
        form = {k: _scalar(v) for k, v in fields.items()}
        body, headers, path = urlencode(form).encode(), FORM_HEADERS, "/rtbs.json"
    return Ping(path, body, headers, f"{key}|{e164}", key)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_invalid(rng: random.Random, n: int) -> tuple[bytes | None, dict[str, str], str, str]:
    """(body, headers, path, what is wrong): each must get a 4xx and never be forwarded."""
    key = RTB_KEYS[0]
    good = {"key": key, "publisher_id": "pub_1000", "lt_kind": "invalid"}
    variant = n % 8
    if variant == 0:
        return _encode({**good, "caller_number": "555-CALL-NOW"}), JSON_HEADERS, "", "bad number"
    if variant == 1:
        return _encode({**good, "caller_number": "12345"}), JSON_HEADERS, "", "short number"
    if variant == 2:
        body = {"publisher_id": "pub_1000", "caller_number": caller_e164(n), "lt_kind": "invalid"}
        return _encode(body), JSON_HEADERS, "", "missing key"
    if variant == 3:
        body = {**good, "caller_number": caller_e164(n), "meta": {"nested": True}}
        return _encode(body), JSON_HEADERS, "", "nested tag"
    if variant == 4:
        return b'{"key": "' + key.encode() + b'", "caller_', JSON_HEADERS, "", "malformed json"
    if variant == 5:
        body = {**good, "caller_number": caller_e164(n), "utm source!": "x"}
        return urlencode(body).encode(), FORM_HEADERS, "", "bad tag name"
    if variant == 6:
        many = {f"t{i}": str(i) for i in range(101)}
        return (
            _encode({**good, "caller_number": caller_e164(n), **many}),
            JSON_HEADERS,
            "",
            "101 tags",
        )
    text = {"Content-Type": "text/plain", "Accept": "application/json"}
    return f"caller_number={caller_e164(n)}".encode(), text, "", "unsupported content type"


class Pools:
    """Every request of the run, generated before the first user starts."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        # Each run numbers its callers from a random block of a million, so runs against
        # a shared store (or several Locust processes) do not reuse callers by chance.
        self.next_n = itertools.count(self.rng.randrange(0, 100) * 1_000_000)
        self.repeat = [self._make("repeat") for _ in range(max(1, REPEAT_CALLERS))]
        fresh_kinds = ("unique", "burst", "confirm")
        fresh_total = sum(MIX[k] for k in fresh_kinds) or 1
        self.fresh = {
            k: [self._make(k) for _ in range(UNIQUE_POOL * MIX[k] // fresh_total)]
            for k in fresh_kinds
        }
        self.fresh_iter = {k: iter(v) for k, v in self.fresh.items()}
        self.invalid = [build_invalid(self.rng, i) for i in range(400)]
        self.invalid_iter = itertools.cycle(self.invalid)

    def _make(self, kind: str) -> Ping:
        return build_ping(self.rng, next(self.next_n), kind)

    def take(self, kind: str) -> Ping:
        ping = next(self.fresh_iter[kind], None)
        if ping is None:
            TALLY.pool_exhausted[kind] += 1
            ping = self._make(kind)
        return ping


# -- what happened (for the runner's verdict) ---------------------------------------------


@dataclass
class Tally:
    attempted_keys: set[str] = field(default_factory=set)
    answered_keys: set[str] = field(default_factory=set)
    x_shield: Counter[str] = field(default_factory=Counter)
    flag_errors: int = 0
    repeat_uuids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    bursts: int = 0
    bursts_one_reservation: int = 0
    confirms: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    core_api: Counter[str] = field(default_factory=Counter)
    pool_exhausted: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        split = [len(u) for u in self.repeat_uuids.values()]
        return {
            "seed": SEED,
            "mix": MIX,
            "core_api_mode": CORE_API_MODE,
            "attempted_shield_keys": sorted(self.attempted_keys),
            "answered_shield_keys": sorted(self.answered_keys),
            "x_shield": dict(self.x_shield),
            "shield_flag_errors": self.flag_errors,
            "repeat_callers_used": len(split),
            "repeat_callers_split": sum(1 for n in split if n > 1),
            "bursts": self.bursts,
            "bursts_one_reservation": self.bursts_one_reservation,
            "confirms": dict(self.confirms),
            "invalid": dict(self.invalid),
            "core_api": dict(self.core_api),
            "pool_exhausted": dict(self.pool_exhausted),
        }


TALLY = Tally()
POOLS: Pools | None = None


@events.init.add_listener
def _on_init(environment: Any, **kwargs: Any) -> None:
    global POOLS
    POOLS = Pools(SEED)


def _write_summary() -> None:
    if SUMMARY_PATH:
        with open(SUMMARY_PATH, "wb") as out:
            out.write(msgspec.json.format(_encode(TALLY.as_json())))


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **kwargs: Any) -> None:
    _write_summary()


@events.quitting.add_listener
def _on_quitting(environment: Any, **kwargs: Any) -> None:
    _write_summary()


def _pools() -> Pools:
    if POOLS is None:
        raise StopUser()
    return POOLS


# -- publisher traffic --------------------------------------------------------------------


def _send_ping(user: FastHttpUser, ping: Ping, kind: str) -> str | None:
    """POST one valid ping, check the answer against the contract; return its uuid."""
    # Attempted before sending, answered after: a user stopped at the end of the run may
    # have sent a ping whose answer it never read, or never sent one it meant to.
    TALLY.attempted_keys.add(ping.shield_key)
    with user.client.post(
        ping.path,
        data=ping.body,
        headers=ping.headers,
        name=f"POST /rtbs.json [{kind}]",
        catch_response=True,
    ) as resp:
        TALLY.answered_keys.add(ping.shield_key)
        if resp.status_code != 200:
            resp.failure(f"status {resp.status_code}")
            return None
        try:
            data = _decode(resp.content or b"")
        except msgspec.DecodeError:
            resp.failure("answer is not JSON")
            return None
        if not isinstance(data, dict) or not data.get("uuid"):
            resp.failure("answer has no uuid")
            return None
        shield = resp.headers.get("X-Shield") or "absent"
        TALLY.x_shield[f"{kind}:{shield}"] += 1
        flagged = data.get("retreaver_ping_shield") is True
        if shield in ("hit", "coalesced") and not flagged:
            TALLY.flag_errors += 1
            resp.failure(f"X-Shield {shield} without retreaver_ping_shield")
        elif shield == "miss" and flagged:
            TALLY.flag_errors += 1
            resp.failure("first answer carries retreaver_ping_shield")
        else:
            resp.success()
        return str(data["uuid"])


def unique_ping(user: FastHttpUser) -> None:
    _send_ping(user, _pools().take("unique"), "unique")


def repeat_ping(user: FastHttpUser) -> None:
    ping = random.choice(_pools().repeat)
    uuid = _send_ping(user, ping, "repeat")
    if uuid is not None:
        TALLY.repeat_uuids[ping.shield_key].add(uuid)


def burst_of_duplicates(user: FastHttpUser) -> None:
    """``BURST_SIZE`` identical pings at once: one upstream request, one reservation."""
    ping = _pools().take("burst")
    uuids: list[str | None] = []
    group = Group()
    for _ in range(BURST_SIZE):
        group.spawn(lambda: uuids.append(_send_ping(user, ping, "burst")))
    group.join(timeout=30)
    TALLY.bursts += 1
    if len(uuids) == BURST_SIZE and None not in uuids and len(set(uuids)) == 1:
        TALLY.bursts_one_reservation += 1


def confirm_reservation(user: FastHttpUser) -> None:
    """A publisher's full cycle: ping a new caller, then confirm the reservation."""
    ping = _pools().take("confirm")
    uuid = _send_ping(user, ping, "confirm")
    if uuid is None:
        TALLY.confirms["no reservation"] += 1
        return
    method = "PATCH" if random.random() < 0.25 else "PUT"
    body = _encode({"key": ping.rtb_key, "status": "confirmed"})
    with user.client.request(
        method,
        f"/rtbs/{uuid}.json",
        data=body,
        headers=JSON_HEADERS,
        name=f"{method} /rtbs/{{uuid}}.json",
        catch_response=True,
    ) as resp:
        if resp.status_code != 200:
            TALLY.confirms[f"status {resp.status_code}"] += 1
            resp.failure(f"status {resp.status_code}")
            return
        try:
            status = _decode(resp.content or b"{}").get("status")
        except (msgspec.DecodeError, AttributeError):
            status = None
        if status not in ("confirmed", "no-target"):
            TALLY.confirms["bad answer"] += 1
            resp.failure(f"confirm answered status={status!r}")
            return
        TALLY.confirms[str(status)] += 1
        resp.success()


def invalid_ping(user: FastHttpUser) -> None:
    body, headers, _, what = next(_pools().invalid_iter)
    with user.client.post(
        "/rtbs.json",
        data=body,
        headers=headers,
        name="POST /rtbs.json [invalid]",
        catch_response=True,
    ) as resp:
        code = resp.status_code
        ok = 400 <= code < 500 and code not in (404, 405)
        if ok:
            try:
                ok = isinstance(_decode(resp.content or b"").get("error"), str)
            except (msgspec.DecodeError, AttributeError):
                ok = False
        TALLY.invalid["refused" if ok else f"{what}: status {code}"] += 1
        if ok:
            resp.success()
        else:
            resp.failure(f"{what}: expected a 4xx JSON error, got {code}")


def _wait_time():  # type: ignore[no-untyped-def]
    return constant_throughput(USER_RPS) if USER_RPS > 0 else constant(0)


_PUBLISHER_TASKS = {
    unique_ping: MIX["unique"],
    repeat_ping: MIX["repeat"],
    burst_of_duplicates: MIX["burst"],
    confirm_reservation: MIX["confirm"],
    invalid_ping: MIX["invalid"],
}


class PublisherUser(FastHttpUser):
    """A publisher's integration pinging for callers."""

    weight = _env_int("LOADTEST_PUBLISHER_WEIGHT", 10)
    wait_time = _wait_time()
    concurrency = max(10, BURST_SIZE)
    network_timeout = 10.0
    connection_timeout = 5.0
    tasks = {fn: w for fn, w in _PUBLISHER_TASKS.items() if w > 0}  # noqa: RUF012


# -- Core API lookups ---------------------------------------------------------------------

# (list path, member name, id field, by-id path template, an id from the reference)
RESOURCES = (
    ("/calls.json", "call", "uuid", "/calls/{}.json", "addcf985-017e-4962-be34-cf5d55e74afc"),
    ("/api/v2/calls.json", "call", "uuid", "/api/v2/calls/{}.json",
     "94079290-93f3-4527-9e78-88653aaf3c49"),
    ("/affiliates.json", "affiliate", "afid", "/affiliates/afid/{}.json", "0002"),
    ("/targets.json", "target", "id", "/targets/{}.json", "6588"),
    ("/campaigns.json", "campaign", "cid", "/campaigns/cid/{}.json", "0044"),
    ("/numbers.json", "number", "id", "/numbers/{}.json", "5"),
    ("/number_pools.json", "number_pool", "id", "/number_pools/{}.json", "1"),
    ("/contacts.json", "contact", "id", "/contacts/{}.json", "2"),
    ("/companies.json", "company", "id", "/companies/{}.json", "1"),
    ("/suppressed_numbers.json", "suppressed_number", "number",
     "/suppressed_numbers/{}.json", "+13216065590"),
    ("/target_groups.json", "target_group", "id", "/target_groups/{}.json", "1"),
)  # fmt: skip
REPORT_QUERY = "facet=publisher&domain=calls&created_at_start=2024-10-25&created_at_end=2024-10-28"
_KNOWN_IDS: dict[str, list[str]] = defaultdict(list)
_NEXT_PAGE: dict[str, str] = {}


def _credentials(extra: str = "") -> str:
    query = f"api_key={quote(API_KEY, safe='')}&company_id={quote(COMPANY_ID, safe='')}"
    return f"{query}&{extra}" if extra else query


def _lookup(user: FastHttpUser, path: str, name: str) -> Any:
    """GET through the gateway; the request name never carries the api_key."""
    with user.client.get(path, name=name, catch_response=True) as resp:
        code = resp.status_code
        if code == 200:
            resp.success()
            TALLY.core_api["200"] += 1
            link = resp.headers.get("Link") or ""
            _remember_next(name, link)
            try:
                return _decode(resp.content or b"null")
            except msgspec.DecodeError:
                return None  # XML or another format: passed through as sent
        if code == 404:
            missing = b"no such route" in (resp.content or b"")
            if missing and CORE_API_MODE == "required":
                resp.failure("the gateway has no such route")
            else:
                resp.success()
            TALLY.core_api["404 no such route" if missing else "404 from upstream"] += 1
            return None
        if code == 429:
            resp.success()  # the contract's answer when the upstream's wait is too long
            TALLY.core_api["429"] += 1
            return None
        TALLY.core_api[f"status {code}"] += 1
        resp.failure(f"status {code}")
        return None


def _remember_next(name: str, link: str) -> None:
    """Keep the next page's path and query exactly as the Link gave them (the gateway
    changes only the origin, so the client's own api_key is still in there)."""
    for part in link.split(","):
        if 'rel="next"' in part and "<" in part:
            url = part[part.index("<") + 1 : part.index(">")]
            split = urlsplit(url)
            _NEXT_PAGE[name.split(" ")[1]] = f"{split.path}?{split.query}"


class LookupUser(FastHttpUser):
    """An operator's script reading the Core API through the gateway."""

    weight = _env_int("LOADTEST_LOOKUP_WEIGHT", 1)
    wait_time = constant_throughput(USER_RPS) if USER_RPS > 0 else constant(0.2)
    network_timeout = 15.0
    connection_timeout = 5.0

    @task(4)
    def list_resource(self) -> None:
        path, member, id_field, _, _ = random.choice(RESOURCES)
        data = _lookup(self, f"{path}?{_credentials()}", f"GET {path}")
        if isinstance(data, list):
            ids = _KNOWN_IDS[path]
            for item in data[:25]:
                if isinstance(item, dict):
                    inner = item.get(member, item)
                    if isinstance(inner, dict) and inner.get(id_field) is not None:
                        ids.append(str(inner[id_field]))
            del ids[:-100]

    @task(2)
    def next_page(self) -> None:
        path = random.choice(RESOURCES)[0]
        target = _NEXT_PAGE.get(path) or f"{path}?{_credentials('page=2')}"
        _lookup(self, target, f"GET {path} [page]")

    @task(3)
    def by_id(self) -> None:
        path, _, _, template, example = random.choice(RESOURCES)
        ids = _KNOWN_IDS.get(path) or [example]
        ident = quote(random.choice(ids), safe="+")
        _lookup(self, f"{template.format(ident)}?{_credentials()}", f"GET {template}")

    @task(1)
    def report(self) -> None:
        path = "/api/v1/reports.json"
        _lookup(self, f"{path}?{_credentials(REPORT_QUERY)}", f"GET {path}")

    @task(1)
    def xml_list(self) -> None:
        _lookup(self, f"/affiliates.xml?{_credentials()}", "GET /affiliates.xml")


LookupUser.abstract = CORE_API_MODE == "off"
