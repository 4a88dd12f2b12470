"""Protections: who may ping, how often, how much at once, and how slowly.

Each module is one protection, built once (in the lifespan or by the server) and cheap
per request:

===================  ==================================================================
``allowlist``        RTB keys allowed through (``GATEWAY_RTB_ALLOWED_KEYS[_FILE]``): 403
``ratelimit``        per-publisher / per-key GCRA limits, Redis with in-process
                     fallback (``GATEWAY_RATE_LIMIT_PER_PUBLISHER``/``_PER_KEY``): 429
``guard``            runs those two on a parsed ping or confirmation
``breaker``          upstream circuit breaker and in-flight cap around every forward
                     (``GATEWAY_BREAKER_FAILURES``/``_OPEN_S``): fast 503
``shedding``         per-replica cap of requests in flight (``GATEWAY_MAX_IN_FLIGHT``)
                     and query-string length (``GATEWAY_MAX_QUERY_BYTES``): 503 / 414
``connection``       uvicorn protocol guards: head size (``GATEWAY_MAX_HEADER_BYTES``),
                     slow clients (``GATEWAY_CLIENT_TIMEOUT_S``), open connections
                     (``GATEWAY_MAX_CONNECTIONS``): 431 / 414 / 408 / 503
===================  ==================================================================

Every refusal is a JSON error like the rest of the gateway's and is counted in
``gateway_protect_refusals_total{reason}``; nothing refused is ever forwarded.
"""
