"""Shared state for the middleware: rate-limit buckets, a tagged cache, idempotency records.

One concept per module: the contract (`base`), the stores (`memory/`, `redis/`: one storage per
file, as the ``limits`` library keeps them), the `Backend` that holds them (`backend`), and the
wrappers that compose stores (`leasing`, `resilient`, `tiered`). The two builders here are the one
place where the composition is decided: `build_backend` picks Redis when a URL is configured (every
replica sees the same state), else process memory (correct for exactly one replica);
`build_rate_limiter` puts the wrappers a backend's buckets need in front of them.
"""

from __future__ import annotations

from app.backends.backend import Backend, MemoryBackend, RedisBackend
from app.backends.base import (
    BackendUnavailable,
    BucketBatch,
    CacheEntry,
    CacheStore,
    EntryCacheStore,
    IdempotencyBegin,
    IdempotencyStore,
    OperationObserver,
    RateDecision,
    RateLimitStore,
    TokenBucketStore,
    best_effort,
)
from app.backends.leasing import LeasingRateLimiter
from app.backends.memory import MemoryCache, MemoryIdempotencyStore, MemoryRateLimitStore
from app.backends.redis import RedisConnection
from app.backends.redis.connection import Client as RedisClient
from app.backends.redis.connection import RedisMode
from app.backends.resilient import FallbackPolicy, ResilientRateLimiter
from app.backends.tiered import TieredCache
from app.health import HealthRegistry

__all__ = [
    "Backend",
    "BackendUnavailable",
    "BucketBatch",
    "CacheEntry",
    "CacheStore",
    "EntryCacheStore",
    "FallbackPolicy",
    "IdempotencyBegin",
    "IdempotencyStore",
    "LeasingRateLimiter",
    "MemoryBackend",
    "MemoryCache",
    "MemoryIdempotencyStore",
    "MemoryRateLimitStore",
    "OperationObserver",
    "RateDecision",
    "RateLimitStore",
    "RedisBackend",
    "RedisClient",
    "RedisConnection",
    "RedisMode",
    "ResilientRateLimiter",
    "TieredCache",
    "TokenBucketStore",
    "best_effort",
    "build_backend",
    "build_rate_limiter",
]


def build_backend(
    redis_url: str | None,
    *,
    key_prefix: str = "mcps:",
    mode: RedisMode = "single",
    socket_timeout_seconds: float = 0.25,
    connect_timeout_seconds: float = 0.25,
    memory_max_keys: int = 100_000,
    observer: OperationObserver | None = None,
) -> Backend:
    """Redis when ``redis_url`` is set (``redis://``, ``rediss://`` or ``unix://``), else memory;
    ``mode`` says whether the URL names one Redis or a node of a Redis Cluster.

    ``observer`` is told about every Redis operation (metrics, traces); memory has none to report.
    No I/O here: call ``await backend.open()`` in the app's lifespan and ``close()`` at shutdown.
    """
    if redis_url:
        return RedisBackend(
            RedisConnection(
                redis_url,
                key_prefix=key_prefix,
                mode=mode,
                socket_timeout_seconds=socket_timeout_seconds,
                connect_timeout_seconds=connect_timeout_seconds,
                observer=observer,
            )
        )
    return MemoryBackend(memory_max_keys)


def build_rate_limiter(
    backend: Backend,
    health: HealthRegistry,
    *,
    fallback_policy: FallbackPolicy = "local",
    local_share: float = 1.0,
    lease_max: int = 0,
) -> RateLimitStore:
    """The limiter the rate-limit stage calls.

    In memory: the backend's own buckets (no round trip to save, no outage to survive). In Redis:
    its buckets behind `LeasingRateLimiter` (coalesced round trips, leases of up to ``lease_max``
    tokens) behind `ResilientRateLimiter` (``fallback_policy`` while Redis is away, the local bucket
    scaled by ``local_share``), whose state is added to ``health`` as ``rate_limiter``: not required
    for readiness, since failing every replica's readiness on a shared outage would empty the fleet.
    """
    if backend.redis is None:
        return backend.rate_limits
    limiter = ResilientRateLimiter(
        LeasingRateLimiter(backend.rate_limits, lease_max=lease_max),
        fallback_policy=fallback_policy,
        local=MemoryRateLimitStore(),
        local_share=local_share,
    )
    health.add("rate_limiter", limiter.health, required=False)
    return limiter
