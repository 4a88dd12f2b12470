"""The shield's breaker is the Redis seam's: see :class:`gateway.redis.Breaker`.

One per process, shared with the rate limiter and the lookup cache, so that all three
stop asking a failing Redis together.
"""

from gateway.redis import Breaker

__all__ = ["Breaker"]
