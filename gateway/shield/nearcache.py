"""Recent hits kept in process, so a repeat is answered without a Redis round trip.

A near-cached answer is a copy of what Redis held; two things can make it wrong:

- **A confirmation rewrites the stored answer.** Confirmations are announced to every
  replica (see ``redis.py``); :meth:`NearCache.invalidate` drops the entry and bumps
  ``generation``. The generation closes the race between a lookup and an invalidation:
  a caller notes the generation before asking Redis and :meth:`put` refuses to cache if
  any invalidation arrived meanwhile, because the answer in hand might predate the
  confirmation.
- **Redis loses the answer without telling anyone** (``FLUSHALL``, eviction under
  ``maxmemory``, a failover to a replica that had not caught up). Nothing is announced,
  so a copy is trusted only for ``ttl_ms`` (``GATEWAY_SHIELD_NEAR_CACHE_TTL_MS``) after
  it was read from or written to Redis; after that the next repeat asks Redis again (one
  round trip, as any near-cache miss) and the copy is replaced by what Redis holds now.
  Replicas that disagree after a loss therefore agree again within ``ttl_ms``, and a
  caller pinging faster than that still costs Redis one lookup per ``ttl_ms``.
"""

from __future__ import annotations

from collections import OrderedDict

from gateway.shield.entry import Entry, Packed, pack, unpack

DEFAULT_TTL_MS = 1000


class NearCache:
    def __init__(self, size: int, ttl_ms: int = DEFAULT_TTL_MS) -> None:
        self._size = size
        self._ttl_ms = ttl_ms
        # (packed entry, trusted until epoch ms): tuples of plain values, invisible to
        # the cycle GC (see entry.py).
        self._data: OrderedDict[str, tuple[Packed, int]] = OrderedDict()
        self.generation = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, digest: str, now_ms: int) -> Entry | None:
        found = self._data.get(digest)
        if found is None:
            return None
        packed, trusted_until = found
        if packed[3] <= now_ms or trusted_until <= now_ms:
            del self._data[digest]
            return None
        self._data.move_to_end(digest)
        return unpack(packed)

    def put(self, digest: str, entry: Entry, generation: int, now_ms: int) -> None:
        """Cache ``entry``, just read from or written to Redis at ``now_ms``."""
        if generation != self.generation or self._size <= 0:
            return
        data = self._data
        data[digest] = (pack(entry), now_ms + self._ttl_ms)
        data.move_to_end(digest)
        if len(data) > self._size:
            data.popitem(last=False)

    def invalidate(self, digest: str) -> None:
        self.generation += 1
        self._data.pop(digest, None)

    def clear(self) -> None:
        self.generation += 1
        self._data.clear()
