"""Token buckets in process memory: the same math as ``lua/token_bucket.lua`` (keep the two in step).

Each bucket is ``(tokens, updated)``; a missing one is full. Refill is continuous from ``updated``
on the monotonic clock, capped at capacity; a clock going back refills nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from app.backends.base import BucketBatch, RateDecision, check_bucket
from app.backends.memory.lru import Clock, Lru

# Same cap as token_bucket.lua: waits stay sane whatever the rate.
_YEAR_MS = 31_536_000_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float  # clock seconds


class MemoryRateLimitStore:
    """A `TokenBucketStore` in a bounded dict (the least recently used bucket goes first, and comes back full)."""

    source = "memory"

    def __init__(self, max_keys: int = 100_000, *, clock: Clock = time.monotonic) -> None:
        self._buckets: Lru[_Bucket] = Lru(max_keys)
        self._clock = clock

    async def acquire(self, key: str, *, capacity: float, refill_per_second: float, cost: float = 1.0) -> RateDecision:
        check_bucket(capacity, refill_per_second, cost)
        bucket = self._refilled(key, capacity, refill_per_second)
        return self._take(bucket, capacity, refill_per_second, cost)

    async def acquire_many(
        self, key: str, *, capacity: float, refill_per_second: float, costs: Sequence[float], lease: int = 0
    ) -> BucketBatch:
        check_bucket(capacity, refill_per_second, *costs)
        bucket = self._refilled(key, capacity, refill_per_second)
        decisions = [self._take(bucket, capacity, refill_per_second, cost) for cost in costs]
        leased = max(0, min(lease, math.floor(bucket.tokens - capacity / 2)))  # only from the top half
        bucket.tokens -= leased
        return BucketBatch(decisions, leased)

    def _refilled(self, key: str, capacity: float, refill_per_second: float) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(capacity, now)
            self._buckets.put(key, bucket)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(capacity, bucket.tokens + elapsed * refill_per_second)
        bucket.updated = now
        return bucket

    def _take(self, bucket: _Bucket, capacity: float, refill_per_second: float, cost: float) -> RateDecision:
        if cost <= bucket.tokens:
            bucket.tokens -= cost
            return RateDecision(True, bucket.tokens, 0, self.source)
        missing = capacity if cost > capacity else cost - bucket.tokens  # never fits: one full refill period
        retry_after_ms = min(_YEAR_MS, max(1, math.ceil(missing * 1000 / refill_per_second)))
        return RateDecision(False, bucket.tokens, retry_after_ms, self.source)
