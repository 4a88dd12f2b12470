"""The gateway's own error answers.

Every error the gateway itself produces is a JSON object whose ``"error"`` member is a
short machine-readable string, as the Core API does (``{"error": "..."}``); a human
``"message"`` and, for validation failures, ``"fields"`` (field name -> problem) follow.
Bodies are encoded once with msgspec; nothing here ever echoes a secret back.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from starlette.responses import Response

_encoder = msgspec.json.Encoder()

JSON = "application/json"


class GatewayError(Exception):
    """An answer the gateway gives instead of forwarding: status + error code + message."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.fields = dict(fields) if fields else None
        self.headers = dict(headers) if headers else None

    def body(self) -> bytes:
        payload: dict[str, object] = {"error": self.error, "message": self.message}
        if self.fields:
            payload["fields"] = self.fields
        return _encoder.encode(payload)

    def response(self, extra_headers: Mapping[str, str] | None = None) -> Response:
        headers = dict(self.headers or {})
        if extra_headers:
            headers.update(extra_headers)
        return Response(self.body(), status_code=self.status, media_type=JSON, headers=headers)


def error_response(
    status: int,
    error: str,
    message: str,
    *,
    fields: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return GatewayError(status, error, message, fields=fields, headers=headers).response()


def invalid_request(fields: Mapping[str, str]) -> GatewayError:
    names = ", ".join(sorted(fields))
    return GatewayError(422, "invalid_request", f"invalid fields: {names}", fields=fields)


def upstream_timeout(upstream: str) -> GatewayError:
    return GatewayError(504, "upstream_timeout", f"the {upstream} upstream did not answer in time")


def upstream_unavailable(upstream: str, detail: str) -> GatewayError:
    return GatewayError(502, "bad_gateway", f"the {upstream} upstream failed: {detail}")
