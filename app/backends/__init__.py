"""Shared state for the middleware: rate-limit buckets, a tagged cache, idempotency records.

`build_backend` picks the implementation: Redis when a URL is configured (every replica sees the
same state), else process memory (correct for exactly one replica). Callers use only the protocols
of `app.backends.base`; `ResilientRateLimiter` and `TieredCache` compose stores.
"""

from __future__ import annotations

from app.backends.base import (
    Backend,
    BackendUnavailable,
    CacheEntry,
    CacheStore,
    EntryCacheStore,
    IdempotencyBegin,
    IdempotencyStore,
    RateDecision,
    RateLimitStore,
    best_effort,
)
from app.backends.memory import MemoryBackend, MemoryCache, MemoryIdempotencyStore, MemoryRateLimitStore, TieredCache
from app.backends.redis_backend import RedisBackend
from app.backends.resilient import FallbackPolicy, ResilientRateLimiter

__all__ = [
    "Backend",
    "BackendUnavailable",
    "CacheEntry",
    "CacheStore",
    "EntryCacheStore",
    "FallbackPolicy",
    "IdempotencyBegin",
    "IdempotencyStore",
    "MemoryBackend",
    "MemoryCache",
    "MemoryIdempotencyStore",
    "MemoryRateLimitStore",
    "RateDecision",
    "RateLimitStore",
    "RedisBackend",
    "ResilientRateLimiter",
    "TieredCache",
    "best_effort",
    "build_backend",
]


def build_backend(
    redis_url: str | None,
    *,
    key_prefix: str = "mcps:",
    socket_timeout_seconds: float = 0.25,
    connect_timeout_seconds: float = 0.25,
    memory_max_keys: int = 100_000,
    rate_limit_lease_max: int = 0,
) -> Backend:
    """Redis when ``redis_url`` is set (``redis://``, ``rediss://`` or ``unix://``), else memory.

    No I/O here: call ``await backend.open()`` in the app's lifespan and ``close()`` at shutdown.
    """
    if redis_url:
        return RedisBackend(
            redis_url,
            key_prefix=key_prefix,
            socket_timeout_seconds=socket_timeout_seconds,
            connect_timeout_seconds=connect_timeout_seconds,
            rate_limit_lease_max=rate_limit_lease_max,
        )
    return MemoryBackend(memory_max_keys)
