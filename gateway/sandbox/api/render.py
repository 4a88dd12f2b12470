"""JSON and XML renderings, shaped the way Retreaver's Rails app renders them.

JSON: the records as they are (``{"affiliate": {...}}`` wrappers are built by the routes).
XML: what Rails' ``to_xml`` produces: an ``<?xml?>`` declaration, a root element, tags
dasherized (``first_name`` → ``<first-name>``), ``type`` attributes for integers, floats,
booleans, timestamps and arrays, ``nil="true"`` for nulls, two-space indentation. An array
of one-key wrapper objects (``[{"timer": {...}}]``) renders each item as that element.
The reference serves XML as ``text/xml``.
"""

from __future__ import annotations

import re
from typing import Any
from xml.sax.saxutils import escape

import msgspec
from starlette.responses import Response

JSON_TYPE = "application/json"
XML_TYPE = "text/xml"
FORMATS = ("json", "xml")

_enc = msgspec.json.Encoder()
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def dasherize(name: str) -> str:
    tag = _TAG_UNSAFE.sub("-", name.replace("_", "-"))
    return tag if tag and not tag[0].isdigit() and tag[0] not in "-." else f"_{tag}"


def singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("ses") or name.endswith("xes"):
        return name[:-2]
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def _scalar(tag: str, value: Any, pad: str) -> str:
    if value is None:
        return f'{pad}<{tag} nil="true"/>\n'
    if isinstance(value, bool):
        return f'{pad}<{tag} type="boolean">{"true" if value else "false"}</{tag}>\n'
    if isinstance(value, int):
        return f'{pad}<{tag} type="integer">{value}</{tag}>\n'
    if isinstance(value, float):
        return f'{pad}<{tag} type="float">{value!r}</{tag}>\n'
    text = str(value)
    if _TIMESTAMP.match(text):
        return f'{pad}<{tag} type="datetime">{text}</{tag}>\n'
    return f"{pad}<{tag}>{escape(text)}</{tag}>\n"


def _element(name: str, value: Any, depth: int) -> str:
    tag = dasherize(name)
    pad = "  " * depth
    if isinstance(value, dict):
        if not value:
            return f"{pad}<{tag}/>\n"
        inner = "".join(_element(k, v, depth + 1) for k, v in value.items())
        return f"{pad}<{tag}>\n{inner}{pad}</{tag}>\n"
    if isinstance(value, list):
        if not value:
            return f'{pad}<{tag} type="array"/>\n'
        child = singular(name)
        parts = []
        for item in value:
            if isinstance(item, dict) and len(item) == 1:
                ((key, inner_value),) = item.items()
                if isinstance(inner_value, dict):
                    parts.append(_element(key, inner_value, depth + 1))
                    continue
            parts.append(_element(child, item, depth + 1))
        return f'{pad}<{tag} type="array">\n{"".join(parts)}{pad}</{tag}>\n'
    return _scalar(tag, value, pad)


def to_xml(root: str, value: Any) -> bytes:
    """``value`` (a record or a list) under the element ``root``, as Rails would write it."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + _element(root, value, 0)).encode()


def render(
    fmt: str,
    root: str,
    value: Any,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """``value`` in the requested format. JSON wraps nothing; XML roots at ``root``.

    For the JSON rendering the caller passes the documented shape already wrapped
    (``{"affiliate": {...}}``); for XML the wrapper key becomes the root element.
    """
    if fmt == "xml":
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) == root:
            value = value[root]
        return Response(to_xml(root, value), status, headers, media_type=XML_TYPE)
    return Response(_enc.encode(value), status, headers, media_type=JSON_TYPE)


def error(fmt: str, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The Core API's error convention: an object whose ``error`` member is a string."""
    return render(fmt, "hash", {"error": message}, status=status, headers=headers)


def format_of(path: str) -> str:
    """The rendering a path asks for by its extension (errors follow it; default JSON)."""
    return "xml" if path.endswith(".xml") else "json"


MESSAGES = {
    400: "Bad Request -- Your request was unintelligible. Check your formatting.",
    401: "Unauthorized -- Your API key is wrong or missing.",
    403: "Forbidden -- You didn't pass in your Company ID or you're using the wrong API key.",
    404: "Not Found -- It actually, really doesn't exist.",
    405: "Method Not Allowed -- It doesn't respond to the HTTP action you used.",
    406: "Not Acceptable -- You requested a format that isn't JSON, or, sigh, XML.",
    429: "Too Many Requests -- Slow down. Highly concurrent requests are frowned upon.",
}


async def http_error(request: Any, exc: Any) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong verb), in the Core API's error shape."""
    status = getattr(exc, "status_code", 404)
    headers = getattr(exc, "headers", None)
    return error(format_of(request.url.path), status, MESSAGES.get(status, "error"), headers)


EXCEPTION_HANDLERS = {404: http_error, 405: http_error}
