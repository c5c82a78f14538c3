"""In-process stores: the embedded default for a single replica, and the L1 of `TieredCache`.

One store per module (`rate_limit`, `cache`, `idempotency`), each a bounded LRU (`lru.Lru`: the
least recently used key goes first) on the monotonic clock. They are safe on one event loop because
no method awaits between reading and writing its state: each ``async def`` runs to completion as one
step. (They are not thread-safe; the service runs one loop per process.)

Eviction under pressure is lenient by design: an evicted bucket comes back full, an evicted
idempotency lock lets a retry run. Size ``memory_max_keys`` above the working set.
"""

from __future__ import annotations

from app.backends.memory.cache import MemoryCache
from app.backends.memory.idempotency import MemoryIdempotencyStore
from app.backends.memory.rate_limit import MemoryRateLimitStore

__all__ = ["MemoryCache", "MemoryIdempotencyStore", "MemoryRateLimitStore"]
