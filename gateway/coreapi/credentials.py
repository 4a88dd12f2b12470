"""The credentials a Core API request carries, for keys and forwarding, never for logs.

Who is asking, as the upstream sees it: the credential parameters of the query (``api_key``,
a postback ``key``) and, on the caller-list routes, the ``Authorization: Bearer`` secret.
One digest of them serves both uses: the Core API client quiets a 429'd client per digest
(gateway/coreapi/client.py), and the lookup cache keys answers on it (beside the raw
query, which also carries ``company_id`` and paging), so no secret is ever stored, logged
or labelled in the clear, and two clients with different secrets never share an answer.
"""

from __future__ import annotations

import hashlib
from urllib.parse import unquote_to_bytes

from starlette.types import Scope

from gateway.errors import InvalidQuery

MAX_AUTHORIZATION_BYTES = 4096


def authorization_of(scope: Scope) -> str | None:
    """The request's ``Authorization`` value (the last one), bounded; None when absent."""
    found: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            found = value
    if found is None:
        return None
    if len(found) > MAX_AUTHORIZATION_BYTES:
        raise InvalidQuery(f"the Authorization header is over {MAX_AUTHORIZATION_BYTES} bytes")
    return found.decode("latin-1")


_CREDENTIAL_PARAMS = frozenset({b"api_key", b"key"})


def credentials_digest(query: bytes, authorization: str | None = None) -> bytes:
    """Who is asking, as the upstream sees it: a digest of the credential parameters
    (percent-decoded, so an escaped spelling is the same client) and ``Authorization``."""
    digest = hashlib.blake2b(digest_size=16, person=b"gw-quiet-v1")
    for part in sorted(query.split(b"&")):
        name, _, value = part.partition(b"=")
        if unquote_to_bytes(name.replace(b"+", b" ")) in _CREDENTIAL_PARAMS:
            digest.update(name + b"=" + unquote_to_bytes(value.replace(b"+", b" ")) + b"\0")
    if authorization:
        digest.update(b"authorization:" + authorization.encode("utf-8", "surrogateescape"))
    return digest.digest()
