"""The sandbox's Core API: a stand-in for api.retreaver.com (v1, and v2, v3, v4 under ``/api``).

It follows Retreaver's published Core API reference: every route there (reads and writes), in
``.json`` and ``.xml`` (``text/xml``, shaped like Rails' ``to_xml``) for the unversioned
API and JSON only for ``/api/v2/calls`` and ``/api/v1/reports``; 25 per page with
``Link`` headers; seeded, deterministic data (:mod:`.seeding`).

Seeded credentials (``?api_key=...&company_id=...``):

=================  ==============  ===============================================
api_key            companies       notes
=================  ==============  ===============================================
``woofwoofwoof``   1 (active), 2   the reference's example key; company 1 has 60 calls
                                   (3 pages), 30 numbers (2 pages)
``barkbarkbark``   1               a second key on company 1 (same data, other key)
``meowmeowmeow``   3               another company's key: company_id=1 → 403
=================  ==============  ===============================================

A missing or unknown ``api_key`` is 401; a ``company_id`` the key cannot reach is 403;
no ``company_id`` means the key's active company. Errors are ``{"error": "..."}`` in the
requested format (XML: ``<hash><error>...</error></hash>``); unknown ids are 404; an
unknown extension is 406.

Knobs: see :mod:`.knobs` (``POST /_sandbox/config``: ``core_api_429``,
``core_api_retry_after_s``, ``core_api_max_concurrency``, ``core_api_delay_ms``,
``core_api_status``). Control routes: ``GET|DELETE /_sandbox/core_api/requests`` (every
Core API request received: method, path, raw_path, query, status), ``GET
/_sandbox/core_api/stats`` (in_flight, max_in_flight, rejected_429), ``POST
/_sandbox/core_api/hold`` / ``release`` (keep admitted requests in flight until
released), ``POST /_sandbox/core_api/reset`` (re-seed the data).
"""

from gateway.sandbox.api.auth import CoreApiGuard
from gateway.sandbox.api.route_list import routes
from gateway.sandbox.api.state import CoreApiState

__all__ = ["CoreApiGuard", "CoreApiState", "routes"]
