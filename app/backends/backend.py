"""`Backend`: the three stores of one app over what they share, opened and closed by the app's lifespan.

A backend says what it offers instead of callers testing its class: ``redis`` is the shared
`RedisConnection` (for the subscription bus and packs' stores: one client, one failure policy, one
observer), or None when state lives in this process. `MemoryBackend` is right for one replica,
`RedisBackend` for a fleet.
"""

from __future__ import annotations

import abc
import time

from app.backends.base import BackendUnavailable, EntryCacheStore, IdempotencyStore, TokenBucketStore
from app.backends.memory import MemoryCache, MemoryIdempotencyStore, MemoryRateLimitStore
from app.backends.memory.lru import Clock
from app.backends.redis import RedisCache, RedisConnection, RedisIdempotencyStore, RedisRateLimitStore
from app.health import CheckResult


class Backend(abc.ABC):
    """The stores exist from construction (so wiring can hold them before start-up) and raise
    `BackendUnavailable` until `open` has run."""

    name: str
    rate_limits: TokenBucketStore  # a RateLimitStore that can also feed a LeasingRateLimiter
    cache: EntryCacheStore  # a CacheStore that can also feed a TieredCache
    idempotency: IdempotencyStore
    redis: RedisConnection | None = None  # the connection to share, when state is in Redis

    @abc.abstractmethod
    async def open(self) -> None:
        """Prepare the pool. Does no I/O: the service must start (degraded) while Redis is down."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> float:
        """Round trip in seconds; raises `BackendUnavailable`."""

    async def health(self) -> CheckResult:
        """For the readiness probe: healthy with the ping time, or unhealthy with an error class name."""
        try:
            seconds = await self.ping()
        except BackendUnavailable as exc:
            return CheckResult("unhealthy", {"backend": self.name, "error": str(exc)})
        return CheckResult("healthy", {"backend": self.name, "ping_ms": round(seconds * 1000, 2)})


class MemoryBackend(Backend):
    """All state in this process: right for one replica, wrong for a fleet (each replica counts alone)."""

    name = "memory"
    rate_limits: MemoryRateLimitStore
    cache: MemoryCache
    idempotency: MemoryIdempotencyStore

    def __init__(self, max_keys: int = 100_000, *, clock: Clock = time.monotonic) -> None:
        self.rate_limits = MemoryRateLimitStore(max_keys, clock=clock)
        self.cache = MemoryCache(max_keys, clock=clock)
        self.idempotency = MemoryIdempotencyStore(max_keys, clock=clock)

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> float:
        return 0.0


class RedisBackend(Backend):
    """The three Redis stores over one connection (`RedisConnection`: its key prefix lets several services
    share a Redis; its observer is told about every operation, the bus's and packs' included)."""

    name = "redis"
    rate_limits: RedisRateLimitStore
    cache: RedisCache
    idempotency: RedisIdempotencyStore
    redis: RedisConnection

    def __init__(self, redis: RedisConnection) -> None:
        self.redis = redis
        self.rate_limits = RedisRateLimitStore(self.redis)
        self.cache = RedisCache(self.redis)
        self.idempotency = RedisIdempotencyStore(self.redis)

    @property
    def key_prefix(self) -> str:
        return self.redis.key_prefix

    async def open(self) -> None:
        self.redis.open()

    async def close(self) -> None:
        await self.redis.close()

    async def ping(self) -> float:
        started = time.perf_counter()
        await self.redis.ping()
        return time.perf_counter() - started

    async def health(self) -> CheckResult:
        """As `Backend.health`, and degraded while Redis refuses writes for memory (``maxmemory``):
        it answers a ping, yet every write fails, which "healthy" would hide from the operator."""
        result = await super().health()
        if result.status != "healthy":
            return result
        try:
            full = await self.redis.memory_full()
        except BackendUnavailable as exc:
            return CheckResult("unhealthy", {"backend": self.name, "error": str(exc)})
        if not full:
            return result
        return CheckResult("degraded", {**result.detail, "error": "maxmemory reached: writes are refused"})
