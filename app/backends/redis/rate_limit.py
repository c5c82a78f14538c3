"""Token buckets in Redis: ``{prefix}rl:{key}`` hashes, decided by ``lua/token_bucket.lua`` on Redis' clock.

One script call per step, whatever it decides: one cost (`acquire`), or several costs and a lease
(`acquire_many`, what `app.backends.leasing.LeasingRateLimiter` uses to keep Redis off most calls'
path). The script reads Redis' TIME, never a timestamp from a replica, whose clocks may disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.backends.base import BucketBatch, RateDecision, check_bucket
from app.backends.redis.connection import RedisConnection, lua_script

_SCRIPT = lua_script("token_bucket")


class RedisRateLimitStore:
    """A `TokenBucketStore` shared by every replica: each step is one atomic script call."""

    source = "redis"

    def __init__(self, conn: RedisConnection) -> None:
        self._conn = conn
        self._prefix = f"{conn.key_prefix}rl:"
        conn.add_script("token_bucket", _SCRIPT)

    async def acquire(self, key: str, *, capacity: float, refill_per_second: float, cost: float = 1.0) -> RateDecision:
        batch = await self.acquire_many(key, capacity=capacity, refill_per_second=refill_per_second, costs=[cost])
        return batch.decisions[0]

    async def acquire_many(
        self, key: str, *, capacity: float, refill_per_second: float, costs: Sequence[float], lease: int = 0
    ) -> BucketBatch:
        check_bucket(capacity, refill_per_second, *costs)
        # Only the bucket's parameters go to the script, never a timestamp: the script reads TIME.
        args = [float(capacity), float(refill_per_second), lease, *map(float, costs)]
        reply = await self._conn.script("acquire", "token_bucket", [self._prefix + key], args)
        decisions = [
            RateDecision(bool(reply[i]), float(reply[i + 1]), int(reply[i + 2]), self.source)
            for i in range(1, len(reply), 3)
        ]
        return BucketBatch(decisions, int(reply[0]))
