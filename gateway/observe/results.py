"""How a ping's shield or a Core API lookup produced its answer: the words, defined once.

The same five words are the ``result`` label of ``gateway_shield_lookups_total`` and
``gateway_lookup_cache_total``, the shield columns of ``/stats``, the ``shield_result``
of the access log, and the values of ``X-Shield`` / ``X-Cache``:

- ``hit``: answered from the store (or the near-cache, or the lookup cache);
- ``miss``: forwarded, and the answer stored if fit;
- ``coalesced``: waited for an identical request already forwarding and shared its answer;
- ``error``: the store failed this call, so the request was forwarded without it;
- ``bypass``: the store is being skipped after recent failures; forwarded without it.

And one word that is not a result: ``none``, the ``X-Shield`` of a ping without a caller
number (``GATEWAY_RTB_CALLER_NUMBER=optional``), which never reaches the shield and is
not counted as a lookup.
"""

from __future__ import annotations

HIT = "hit"
MISS = "miss"
COALESCED = "coalesced"
ERROR = "error"
BYPASS = "bypass"
NONE = "none"

RESULTS = (HIT, MISS, COALESCED, ERROR, BYPASS)
