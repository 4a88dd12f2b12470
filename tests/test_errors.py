"""The error map: every class drawn in gateway/errors.py's docstring answers as drawn."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from gateway import errors
from gateway.errors import (
    BadGateway,
    Forbidden,
    GatewayError,
    HttpError,
    InvalidFields,
    UpstreamTimeout,
    prerender,
    render,
    send_error,
)

# "    │   ├── Forbidden                  403 forbidden ..." -> (Forbidden, 403, forbidden)
_DRAWN = re.compile(r"[├└]── (\w+)\s+(\d{3}) (\w+)")
DRAWN = {name: (int(status), code) for name, status, code in _DRAWN.findall(errors.__doc__ or "")}
ALL = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, GatewayError)
}
# The branches (RequestError, Refusal, UpstreamError) are drawn without a status.
BRANCHES = {"GatewayError", "RequestError", "Refusal", "UpstreamError"}


def _make(cls: type[GatewayError], headers: dict[str, str]) -> GatewayError:
    if cls is InvalidFields:
        return InvalidFields({"key": "is required"}).with_headers(headers)
    if cls is BadGateway:
        return BadGateway("rtb", "connection reset").with_headers(headers)
    if cls is UpstreamTimeout:
        return UpstreamTimeout("rtb").with_headers(headers)
    if cls is HttpError:
        return HttpError(400, "a message", headers=headers)
    return cls("a message", headers=headers)


def test_every_error_class_is_drawn_and_every_drawn_class_exists() -> None:
    assert set(DRAWN) | BRANCHES == set(ALL)
    for name in BRANCHES:
        assert f" {name} " in (errors.__doc__ or "").replace("\n", " ")


@pytest.mark.parametrize("name", sorted(DRAWN))
def test_each_error_renders_its_drawn_status_code_body_and_headers(name: str) -> None:
    status, code = DRAWN[name]
    cls = ALL[name]
    error = _make(cls, {"Retry-After": "1"})
    assert (error.status, error.error) == (status, code)
    body = msgspec.json.decode(error.body())
    assert body["error"] == code
    assert body["message"] == error.message
    assert error.message
    assert set(body) == ({"error", "message", "fields"} if error.fields else {"error", "message"})
    response = error.response()
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"] == "1"
    assert response.body == error.body()
    rendered = render(error)
    assert rendered.status == status
    assert rendered.body == error.body()
    assert dict(rendered.headers) == {
        b"content-type": b"application/json",
        b"content-length": str(len(error.body())).encode(),
        b"retry-after": b"1",
    }


def test_invalid_fields_names_every_field() -> None:
    error = InvalidFields({"key": "is required", "caller_number": "is empty"})
    assert msgspec.json.decode(error.body()) == {
        "error": "invalid_request",
        "message": "invalid fields: caller_number, key",
        "fields": {"key": "is required", "caller_number": "is empty"},
    }


def test_http_error_keeps_the_status_starlette_gave() -> None:
    error = HttpError(418, "short and stout")
    assert (error.status, error.response().status_code, render(error).status) == (418, 418, 418)
    assert msgspec.json.decode(error.body())["error"] == "http_error"


def test_errors_are_immutable_and_with_headers_makes_a_new_one() -> None:
    error = Forbidden()
    with pytest.raises(AttributeError):
        error.headers = {"x-shield": "hit"}  # type: ignore[misc]
    with pytest.raises(TypeError):
        error.headers["x-shield"] = "hit"  # type: ignore[index]
    marked = error.with_headers({"x-shield": "bypass"})
    assert marked is not error
    assert type(marked) is Forbidden
    assert dict(marked.headers) == {"x-shield": "bypass"}
    assert dict(error.headers) == {}
    assert marked.body() == error.body()


def test_an_error_made_in_a_module_body_refuses_to_exist() -> None:
    source = "from gateway.errors import Forbidden\nSHARED = Forbidden()\n"
    with pytest.raises(TypeError, match="shared by every request"):
        exec(compile(source, "some_module.py", "exec"), {"__name__": "some_module"})  # noqa: S102
    # What a module may keep instead: the rendered answer, which cannot be raised.
    kept = "from gateway.errors import Forbidden, prerender\nANSWER = prerender(Forbidden)\n"
    namespace: dict[str, Any] = {"__name__": "some_module"}
    exec(compile(kept, "some_module.py", "exec"), namespace)  # noqa: S102
    assert namespace["ANSWER"] == render(Forbidden())


async def test_send_error_writes_the_rendered_answer_on_a_raw_asgi_send() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await send_error(send, prerender(Forbidden), ((b"x-request-id", b"r1"),))
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 403
    assert (b"x-request-id", b"r1") in sent[0]["headers"]
    assert sent[1] == {"type": "http.response.body", "body": Forbidden().body()}
