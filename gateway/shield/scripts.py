"""The Redis shield store's Lua scripts and key layout.

Every hot-path operation is one Lua script, so it is one round trip and atomic:

``acquire``  lookup-or-lease: the stored answer, or a lease (``SET NX PX``) for exactly
             one caller, or the holder's token; a waiter also learns here whether the
             holder it waits on relayed an answer.
``store``    first writer wins (``HSET`` + ``PEXPIRE``), then compare-and-delete of the
             lease, then ``PUBLISH`` a wake-up if anyone is waiting (the waiters flag);
             replies 1 when this answer was written, 0 when an earlier one was kept.
``release``  leave the relayed answer for this token's waiters, compare-and-delete.
``renew``    compare-and-``PEXPIRE``: a live holder keeps a short lease alive.
``confirm``  rewrite (or drop) the stored copy if it is still that reservation, then
             ``PUBLISH`` an invalidation for every replica's near-cache. Run after the
             uuid index led to the digest, or when a repeat found a reservation whose
             confirmation came while its index was lost (see ``service.py``).

Keys, all in the slot of their hash tag (see ``keys.py``)::

    rtbgw:{<digest>}:a   hash  s (status) t (content type) b (shielded body)
                               x (expires, epoch ms) u (uuid)
    rtbgw:{<digest>}:l   lease token
    rtbgw:{<digest>}:o   hash  k (token) + s t b: an answer relayed to that lease's waiters
    rtbgw:{<digest>}:w   "someone is waiting": only then does a result get published
    rtbgw:{<index>}:u    reservation uuid -> digest (for confirm): written by ``store``
                         on a single Redis; in a cluster it lives in another slot, so
                         the store follows the script with its own ``SET``
"""

from __future__ import annotations

CHANNEL = b"rtbgw:shield:events"
"""One channel per deployment: ``w<digest>`` wakes waiters, ``i<digest>`` invalidates,
``c<msgpack>`` announces a confirmation whose uuid index Redis had lost (``redis.py``)."""


def shield_keys(digest: str) -> tuple[str, str, str, str]:
    base = "rtbgw:{" + digest + "}:"
    return base + "a", base + "l", base + "o", base + "w"


def index_key(index: str) -> str:
    return "rtbgw:{" + index + "}:u"


ACQUIRE = """
local e = redis.call('HMGET', KEYS[1], 's', 't', 'b', 'x', 'u')
if e[3] then
  if tonumber(e[4]) > tonumber(ARGV[4]) then
    return {1, e[1], e[2], e[3], e[4], e[5] or ''}
  end
  redis.call('DEL', KEYS[1])
end
local holder = redis.call('GET', KEYS[2])
if holder and holder == ARGV[3] then
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[5])
  return {3, holder}
end
if ARGV[3] ~= '' then
  local o = redis.call('HMGET', KEYS[3], 'k', 's', 't', 'b')
  if o[1] == ARGV[3] then
    return {4, o[2], o[3], o[4]}
  end
end
if not holder then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {2}
end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[5])
return {3, holder}
"""

STORE = """
local written = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 's', ARGV[2], 't', ARGV[3], 'b', ARGV[4], 'x', ARGV[5], 'u', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  if KEYS[4] then
    redis.call('SET', KEYS[4], ARGV[10], 'PX', ARGV[7])
  end
  written = 1
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
if redis.call('DEL', KEYS[3]) == 1 then
  redis.call('PUBLISH', ARGV[8], ARGV[9])
end
return written
"""

RELEASE = """
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[2], 'k', ARGV[1], 's', ARGV[3], 't', ARGV[4], 'b', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
if redis.call('DEL', KEYS[3]) == 1 then
  redis.call('PUBLISH', ARGV[7], ARGV[8])
end
return 1
"""

RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

CONFIRM = """
if redis.call('HGET', KEYS[1], 'u') ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'd' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 's', ARGV[3], 't', ARGV[4], 'b', ARGV[5])
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1
"""
