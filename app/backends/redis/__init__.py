"""Redis stores: state shared by every replica, one store per module over one `RedisConnection`.

`connection` (client, failure policy, scripts, observer), `rate_limit` (token buckets), `cache`
(tagged entries), `idempotency` (records). Each store registers its own Lua scripts with the
connection; each operation is one atomic round trip, so replicas never race each other.
"""

from __future__ import annotations

from app.backends.redis.cache import RedisCache
from app.backends.redis.connection import RedisConnection
from app.backends.redis.idempotency import RedisIdempotencyStore
from app.backends.redis.rate_limit import RedisRateLimitStore

__all__ = ["RedisCache", "RedisConnection", "RedisIdempotencyStore", "RedisRateLimitStore"]
