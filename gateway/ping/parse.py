"""Parsing a publisher ping into a :class:`gateway.ping.requests.Ping`: what may be forwarded.

Retreaver's RTB endpoint takes its fields from the query string or the body, so a ping is
the merge of both (body wins). Everything that is not a known field is a tag. The rules
here are the documented ones (docs: the front door) and they are strict on purpose: a ping that
reaches the upstream costs a buyer money, so anything ambiguous is refused with a 4xx
that names every offending field, never silently dropped or "fixed".

The parser only ever sees bytes that the endpoint already bounded by
``GATEWAY_MAX_BODY_BYTES``; it raises the :class:`~gateway.errors.RequestError` kinds.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from gateway.errors import (
    BadEncoding,
    GatewayError,
    InvalidFields,
    InvalidQuery,
    MalformedJson,
    UnsupportedMediaType,
)
from gateway.ping.phone import InvalidPhoneNumber, to_e164
from gateway.ping.requests import Confirmation, Ping

MAX_TAGS = 100
MAX_TAG_NAME = 64
MAX_TAG_VALUE = 1024
MAX_PUBLISHER = 255

KNOWN_FIELDS = frozenset({"key", "publisher_id", "source_id", "caller_number", "inbound_number"})

_TAG_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_RTB_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
# "." and ".." fit the grammar but are dot-segments: a GET data write puts the key in the
# upstream's path (``/data_writing/{key}``), where either would be read as "this folder"
# or "the parent", so a request for one key could reach another resource.
_DOT_SEGMENTS = frozenset({".", ".."})
KEY_PROBLEM = "must be 1-128 letters, digits, '_', '-' or '.', and not '.' or '..'"
# Control characters never belong in a field Retreaver will log, store and match on:
# C0 (CR, LF, NUL...), DEL, C1 (NEL U+0085...) and the Unicode line and paragraph
# separators, which some log pipelines and JavaScript split lines on. Refusing them
# closes header and log injection through tags and the publisher id.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

_json_decoder = msgspec.json.Decoder()


def media_type(content_type: str | None) -> str:
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def merged_fields(query: bytes, body: bytes, content_type: str | None) -> dict[str, Any]:
    """Query and body fields, merged with the body winning. Raises 400/415."""
    fields = _parse_form(query, source="query string")
    fields.update(_parse_body(body, content_type))
    return fields


def parse_ping(
    query: bytes, body: bytes, content_type: str | None, *, caller_required: bool = True
) -> Ping:
    return validate_ping(merged_fields(query, body, content_type), caller_required=caller_required)


def scalar_values(fields: dict[str, Any], problems: dict[str, str]) -> dict[str, str]:
    """Every field as the string the upstream receives; nested values go to ``problems``."""
    values: dict[str, str] = {}
    for name, value in fields.items():
        text, problem = _scalar(value)
        if problem:
            problems[_safe_name(name)] = problem
        else:
            values[name] = text
    return values


def valid_key(key: str) -> bool:
    """Shaped like an RTB or postback key, and safe as a path segment."""
    return _RTB_KEY.fullmatch(key) is not None and key not in _DOT_SEGMENTS


def check_key(fields: dict[str, Any], values: dict[str, str], problems: dict[str, str]) -> None:
    """``key``: required, and shaped like an RTB or postback key."""
    key = values.get("key")
    if "key" not in fields:
        problems["key"] = "is required"
    elif key is not None and not valid_key(key):
        problems["key"] = KEY_PROBLEM


def phone_field(values: dict[str, str], name: str, problems: dict[str, str]) -> str | None:
    """A phone number field normalised to E.164 (a problem recorded when it is not one)."""
    if name not in values:
        return None
    return _phone(values[name], name, problems)


def tags_of(
    fields: dict[str, Any],
    values: dict[str, str],
    known: frozenset[str],
    problems: dict[str, str],
) -> dict[str, str]:
    """Every field not in ``known`` is a tag, under the contract's rules (CONTRACT §3)."""
    tags: dict[str, str] = {}
    name_ok = _TAG_NAME.fullmatch
    for name, text in values.items():
        if name in known:
            continue
        if not name_ok(name):
            problems[_safe_name(name)] = (
                f"tag names are 1-{MAX_TAG_NAME} letters, digits, '_', '-' or '.'"
            )
        elif len(text) > MAX_TAG_VALUE:
            problems[name] = f"tag values are at most {MAX_TAG_VALUE} characters"
        # Every character _CONTROL names is unprintable, so a printable value (almost all
        # of them; str.isprintable is twice as fast as the search) needs no search.
        elif not text.isprintable() and _CONTROL.search(text):
            problems[name] = "must not contain control characters"
        else:
            tags[name] = text
    tag_count = len(fields) - len(fields.keys() & known)
    if tag_count > MAX_TAGS:
        problems["tags"] = f"at most {MAX_TAGS} tags, got {tag_count}"
    return tags


def validate_ping(fields: dict[str, Any], *, caller_required: bool = True) -> Ping:
    """Validate merged fields into a :class:`Ping`, collecting every problem at once."""
    problems: dict[str, str] = {}
    values = scalar_values(fields, problems)
    check_key(fields, values, problems)
    key = values.get("key")

    publisher_field = "publisher_id"
    publisher = values.get("publisher_id")
    source = values.get("source_id")
    if publisher is not None and source is not None and publisher != source:
        problems["source_id"] = "disagrees with publisher_id"
    elif publisher is None and source is not None:
        publisher, publisher_field = source, "source_id"
    if "publisher_id" not in fields and "source_id" not in fields:
        problems["publisher_id"] = "is required (or its alias source_id)"
    elif publisher is not None:
        # Checked before strip(): str.strip() would quietly drop a trailing NEL or U+2028.
        control = _CONTROL.search(publisher) is not None
        publisher = publisher.strip()
        if control:
            problems[publisher_field] = "must not contain control characters"
        elif not publisher:
            problems[publisher_field] = "must not be empty"
        elif len(publisher) > MAX_PUBLISHER:
            problems[publisher_field] = f"must be at most {MAX_PUBLISHER} characters"

    caller = None
    if "caller_number" not in fields:
        if caller_required:
            problems["caller_number"] = "is required"
    else:
        caller = phone_field(values, "caller_number", problems)
    inbound = None
    if "inbound_number" in values and values["inbound_number"].strip():
        inbound = phone_field(values, "inbound_number", problems)

    tags = tags_of(fields, values, KNOWN_FIELDS, problems)

    if problems:
        raise InvalidFields(problems)
    assert key is not None
    assert publisher is not None
    return Ping(key, publisher, caller, inbound, publisher_field, tags)


def named_in(query: bytes, body: bytes, content_type: str | None) -> Ping | None:
    """What a refused ping named (publisher, key, tags), for its ledger event only.

    An invalid ping still counts for the publisher and sub-ID it named. Best effort and
    never raising: only values that would have passed their own checks are kept, at most
    ``MAX_TAGS`` tags; the caller number is left out (it may be what was invalid).
    """
    try:
        fields = merged_fields(query, body, content_type)
    except GatewayError:
        return None
    publisher = fields.get("publisher_id", fields.get("source_id"))
    if not isinstance(publisher, str) or _CONTROL.search(publisher):
        publisher = None
    else:
        publisher = publisher.strip()[:MAX_PUBLISHER] or None
    key = fields.get("key")
    if not isinstance(key, str) or not _RTB_KEY.fullmatch(key):
        key = ""
    tags: dict[str, str] = {}
    for name, value in fields.items():
        if len(tags) >= MAX_TAGS:
            break
        if (
            name not in KNOWN_FIELDS
            and isinstance(value, str)
            and len(value) <= MAX_TAG_VALUE
            and _TAG_NAME.fullmatch(name)
            and not _CONTROL.search(value)
        ):
            tags[name] = value
    return Ping(key, publisher, None, None, "publisher_id", tags)  # type: ignore[arg-type]


def parse_confirmation(
    uuid: str, query: bytes, body: bytes, content_type: str | None
) -> Confirmation:
    """The uuid, ``key`` and ``status`` of a confirmation; every other field is dropped.

    Clients that add their credentials (``api_key``, ``company_id``) or ``publisher_id``
    to every request send them here too, and Retreaver, a Rails app, ignores parameters it
    does not use; refusing them would leave the reservation unconfirmed while the publisher
    places the call. A confirmation carries nothing else upstream, so the extra fields are
    neither checked nor forwarded. The body must still parse (400/413/415 as for a ping).
    """
    fields = merged_fields(query, body, content_type)
    problems: dict[str, str] = {}
    if not _UUID.fullmatch(uuid):
        problems["uuid"] = "must be a UUID like c6e4ce37-9b49-46af-bd8e-16cb7753499d"
    key, key_problem = _scalar(fields.get("key", ""))
    if "key" not in fields:
        problems["key"] = "is required"
    elif key_problem or not valid_key(key):
        problems["key"] = KEY_PROBLEM
    status, _ = _scalar(fields.get("status", ""))
    if status != "confirmed":
        problems["status"] = "must be 'confirmed'"
    if problems:
        raise InvalidFields(problems)
    return Confirmation(uuid.lower(), key, status, _named_publisher(fields))


def _named_publisher(fields: dict[str, Any]) -> str | None:
    """The ``publisher_id`` (or ``source_id``) a confirmation names, when it is one a ping
    would accept; otherwise None. Never a reason to refuse: the field is not forwarded,
    it only decides whose rate limit the confirmation spends from."""
    for name in ("publisher_id", "source_id"):
        text, problem = _scalar(fields.get(name, ""))
        if problem or _CONTROL.search(text):
            continue
        text = text.strip()
        if text and len(text) <= MAX_PUBLISHER:
            return text
    return None


# -- helpers -----------------------------------------------------------------------------


def _parse_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    if not body.strip():
        return {}
    kind = media_type(content_type)
    if kind == JSON or kind.endswith("+json"):
        return _parse_json(body)
    if kind in (FORM, ""):
        # Retreaver's own example (`curl --data '{...}'`) sends a JSON object with curl's
        # default form content type; Retreaver accepts it, so do we.
        if body.lstrip()[:1] == b"{":
            return _parse_json(body)
        return _parse_form(body, source="form body")
    raise UnsupportedMediaType(f"send {JSON} or {FORM}, not {kind[:80]!r}")


def _parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = _json_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise MalformedJson() from None
    except UnicodeDecodeError:  # msgspec's error for invalid UTF-8 inside a JSON string
        raise BadEncoding("the JSON body is not valid UTF-8") from None
    if not isinstance(data, dict):
        raise MalformedJson("the JSON body must be an object")
    return data


def _parse_form(raw: bytes, *, source: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        text = raw.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_TAGS * 2 + 10,
        )
    except UnicodeDecodeError:
        raise BadEncoding(f"the {source} is not valid UTF-8") from None
    except ValueError:
        raise InvalidQuery(f"the {source} has too many fields") from None
    out: dict[str, Any] = {}
    seen_twice: set[str] = set()
    for name, value in pairs:
        if name in out and out[name] != value:
            seen_twice.add(name)
        out[name] = value
    if seen_twice:
        raise InvalidFields(
            {
                _safe_name(n): "given more than once with different values"
                for n in sorted(seen_twice)[:10]
            }
        )
    return out


def _scalar(value: Any) -> tuple[str, str | None]:
    if isinstance(value, str):
        return value, None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, float):
        return repr(value), None
    if isinstance(value, dict | list):
        return "", "nested objects and arrays are not accepted"
    return "", "must be a string, number or boolean"


def _phone(raw: str, name: str, problems: dict[str, str]) -> str | None:
    try:
        return _cached_e164(raw)
    except InvalidPhoneNumber as exc:
        problems[name] = str(exc)
        return None


@functools.lru_cache(maxsize=16384)
def _cached_e164(raw: str) -> str:
    # Repeat callers are the common case (that is why the shield exists); a NANP number
    # costs ~3 µs to check afresh and any other (libphonenumber's whole parse) ~30 µs, a
    # cache hit well under one. 16k recent numbers cover a repeat within a bid's lifetime
    # at hundreds of pings/s for ~2 MB; at 64k the cache alone made RSS grow 10% from 10k
    # to 1M distinct callers.
    return to_e164(raw)


def _safe_name(name: str) -> str:
    """A field name fit to echo back in an error: bounded and printable."""
    cleaned = _CONTROL.sub("?", name)
    return cleaned if len(cleaned) <= 80 else cleaned[:77] + "..."
