"""Recent hits kept in process, so a repeat is answered without a Redis round trip.

Safe because a stored answer never changes before it expires, with one exception: a
confirmation rewrites it. Confirmations are announced to every replica (see
``redis.py``); :meth:`NearCache.invalidate` drops the entry and bumps ``generation``.

The generation closes the race between a lookup and an invalidation: a caller notes the
generation before asking Redis and :meth:`put` refuses to cache if any invalidation
arrived meanwhile, because the answer in hand might predate the confirmation.
"""

from __future__ import annotations

from collections import OrderedDict

from gateway.shield.entry import Entry, Packed, pack, unpack


class NearCache:
    def __init__(self, size: int) -> None:
        self._size = size
        # Packed tuples, not Entry objects: invisible to the cycle GC (see entry.py).
        self._data: OrderedDict[str, Packed] = OrderedDict()
        self.generation = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, digest: str, now_ms: int) -> Entry | None:
        packed = self._data.get(digest)
        if packed is None:
            return None
        if packed[3] <= now_ms:
            del self._data[digest]
            return None
        self._data.move_to_end(digest)
        return unpack(packed)

    def put(self, digest: str, entry: Entry, generation: int) -> None:
        if generation != self.generation or self._size <= 0:
            return
        data = self._data
        data[digest] = pack(entry)
        data.move_to_end(digest)
        if len(data) > self._size:
            data.popitem(last=False)

    def invalidate(self, digest: str) -> None:
        self.generation += 1
        self._data.pop(digest, None)

    def clear(self) -> None:
        self.generation += 1
        self._data.clear()
