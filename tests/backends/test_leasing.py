"""LeasingRateLimiter over each bucket store: the same decisions as the store alone, in fewer steps.

Every test runs over memory and a real Redis. ``Steps`` counts the store's steps and, like a network
round trip, yields to the loop before each one (memory would otherwise decide before a second
caller could queue). The Redis-only tests count the scripts Redis actually ran.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis

from app.backends import (
    Backend,
    BackendUnavailable,
    BucketBatch,
    LeasingRateLimiter,
    RateDecision,
    RedisBackend,
    RedisConnection,
    TokenBucketStore,
)
from app.backends.leasing import _Lease
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio

SLOW = 0.001


def key() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Steps:
    """A real bucket store, counted, each step after a yield to the loop (as a round trip would)."""

    def __init__(self, inner: TokenBucketStore) -> None:
        self.inner = inner
        self.source = inner.source
        self.calls = 0
        self.leases_wanted: list[int] = []

    async def acquire(self, key: str, *, capacity: float, refill_per_second: float, cost: float = 1.0) -> RateDecision:
        batch = await self.acquire_many(key, capacity=capacity, refill_per_second=refill_per_second, costs=[cost])
        return batch.decisions[0]

    async def acquire_many(
        self, key: str, *, capacity: float, refill_per_second: float, costs: Sequence[float], lease: int = 0
    ) -> BucketBatch:
        self.calls += 1
        self.leases_wanted.append(lease)
        await asyncio.sleep(0)
        return await self.inner.acquire_many(
            key, capacity=capacity, refill_per_second=refill_per_second, costs=costs, lease=lease
        )


async def tokens_left(store: TokenBucketStore, k: str, capacity: float) -> float:
    """What the shared bucket holds now (a zero-cost call takes nothing)."""
    return (await store.acquire(k, capacity=capacity, refill_per_second=SLOW, cost=0)).remaining


# --- coalescing ----------------------------------------------------------------------------------


async def test_concurrent_callers_share_steps_and_stay_exact(backend: Backend) -> None:
    """200 concurrent acquires of one bucket: exactly `capacity` allowed, in far fewer than 200 steps."""
    steps = Steps(backend.rate_limits)
    limiter = LeasingRateLimiter(steps)
    k = key()
    decisions = await asyncio.gather(*(limiter.acquire(k, capacity=50, refill_per_second=SLOW) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 50
    assert [d.allowed for d in decisions] == [True] * 50 + [False] * 150  # decided in arrival order
    assert all(d.retry_after_ms >= 1 for d in decisions if not d.allowed)
    assert {d.source for d in decisions} == {backend.name}
    remaining = [d.remaining for d in decisions[:50]]
    assert remaining == sorted(remaining, reverse=True)
    assert remaining[-1] == pytest.approx(0, abs=0.01)
    assert 2 <= steps.calls <= 20, steps.calls  # the first caller alone, then the queue behind it
    assert set(steps.leases_wanted) == {0}  # lease_max=0: coalescing only


async def test_a_coalesced_step_decides_mixed_costs_like_sequential_calls(backend: Backend) -> None:
    limiter = LeasingRateLimiter(Steps(backend.rate_limits))
    k = key()
    costs = [1.0, 3.0, 2.0, 1.0, 4.0, 1.0]
    decisions = await asyncio.gather(*(limiter.acquire(k, capacity=5, refill_per_second=SLOW, cost=c) for c in costs))
    # 1 (4 left), 3 (1 left), 2 denied, 1 (0 left), 4 denied, 1 denied: a denied call takes nothing.
    assert [d.allowed for d in decisions] == [True, True, False, True, False, False]
    assert [round(d.remaining) for d in decisions] == [4, 1, 1, 0, 0, 0]


async def test_bad_arguments_are_refused_before_any_step(backend: Backend) -> None:
    steps = Steps(backend.rate_limits)
    limiter = LeasingRateLimiter(steps)
    with pytest.raises(ValueError, match="capacity"):
        await limiter.acquire("k", capacity=0, refill_per_second=1)
    assert steps.calls == 0
    with pytest.raises(ValueError, match="lease_max"):
        LeasingRateLimiter(steps, lease_max=-1)


# --- leases --------------------------------------------------------------------------------------


async def test_a_busy_bucket_is_served_from_a_lease_between_steps(backend: Backend) -> None:
    clock = Clock()
    steps = Steps(backend.rate_limits)
    limiter = LeasingRateLimiter(steps, lease_max=8, clock=clock)
    k = key()

    async def take(n: int) -> list[bool]:
        return [(await limiter.acquire(k, capacity=1000, refill_per_second=SLOW)).allowed for _ in range(n)]

    assert await take(5) == [True] * 5  # first window: no history, every call is a step
    assert steps.calls == 5
    clock.now += 0.6  # the window closes with 5 calls seen: the next step leases 5
    assert await take(6) == [True] * 6  # one step, then 5 from the lease
    assert steps.calls == 6
    assert steps.leases_wanted[-1] == 5
    assert await tokens_left(backend.rate_limits, k, 1000) == pytest.approx(1000 - 11, abs=0.1)
    clock.now += 0.6  # unspent leased tokens expire; new calls are steps again
    await take(1)
    assert steps.calls == 7


async def test_leases_never_come_from_the_lower_half_and_never_overshoot(backend: Backend) -> None:
    """Two leasing replicas hammering a 20-token bucket: at most 20 allowed, and the bucket empties."""
    clock = Clock()
    replicas = [LeasingRateLimiter(Steps(backend.rate_limits), lease_max=64, clock=clock) for _ in range(2)]
    k = key()
    for replica in replicas:  # a window of history so that leases are wanted
        for _ in range(30):
            replica._leases.setdefault((k, 20.0, SLOW), _Lease(clock.now)).count(clock.now, 0.5)
    clock.now += 0.6
    decisions = await asyncio.gather(
        *(replicas[i % 2].acquire(k, capacity=20, refill_per_second=SLOW) for i in range(100))
    )
    assert sum(d.allowed for d in decisions) == 20
    assert await tokens_left(backend.rate_limits, k, 20) == pytest.approx(0, abs=0.1)
    for replica in replicas:  # each took at most the top half ahead, and spent it
        assert replica._leases[(k, 20.0, SLOW)].tokens == 0


# --- Redis: real round trips -------------------------------------------------------------------


async def evalsha_calls(raw_redis: Redis) -> int:
    stats = await raw_redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_callers_share_redis_round_trips(redis_backend: RedisBackend, raw_redis: Redis) -> None:
    limiter = LeasingRateLimiter(redis_backend.rate_limits)
    k = key()
    before = await evalsha_calls(raw_redis)
    decisions = await asyncio.gather(*(limiter.acquire(k, capacity=50, refill_per_second=SLOW) for _ in range(200)))
    scripts = await evalsha_calls(raw_redis) - before
    assert [d.allowed for d in decisions] == [True] * 50 + [False] * 150
    assert 2 <= scripts <= 20, scripts  # the first caller alone, then the queue behind it, in a few rounds


async def test_a_lease_saves_redis_round_trips(redis_server: RedisServer, raw_redis: Redis) -> None:
    clock = Clock()
    backend = RedisBackend(RedisConnection(redis_server.url))
    limiter = LeasingRateLimiter(backend.rate_limits, lease_max=8, clock=clock)
    await backend.open()
    try:
        k = key()

        async def take(n: int) -> list[bool]:
            return [(await limiter.acquire(k, capacity=1000, refill_per_second=SLOW)).allowed for _ in range(n)]

        before = await evalsha_calls(raw_redis)
        assert await take(5) == [True] * 5  # first window: no history, every call goes to Redis
        assert await evalsha_calls(raw_redis) - before == 5
        clock.now += 0.6  # the window closes with 5 calls seen: the next round trip leases 5
        before = await evalsha_calls(raw_redis)
        assert await take(6) == [True] * 6  # one round trip, then 5 from the lease
        assert await evalsha_calls(raw_redis) - before == 1
        name = f"{backend.key_prefix}rl:{k}"
        assert float(await raw_redis.hget(name, "tokens") or 0) == pytest.approx(1000 - 11, abs=0.1)
        clock.now += 0.6  # unspent leased tokens expire; new calls go back to Redis
        before = await evalsha_calls(raw_redis)
        await take(1)
        assert await evalsha_calls(raw_redis) - before == 1
    finally:
        await backend.close()


async def test_queued_callers_see_an_outage_as_unavailable(redis_server: RedisServer) -> None:
    backend = RedisBackend(RedisConnection(redis_server.url, socket_timeout_seconds=0.2, connect_timeout_seconds=0.2))
    limiter = LeasingRateLimiter(backend.rate_limits)
    await backend.open()
    k = key()
    assert (await limiter.acquire(k, capacity=5, refill_per_second=SLOW)).allowed
    await backend.close()  # every queued caller must get BackendUnavailable, none may hang
    results = await asyncio.gather(
        *(limiter.acquire(k, capacity=5, refill_per_second=SLOW) for _ in range(10)),
        return_exceptions=True,
    )
    assert all(isinstance(r, BackendUnavailable) for r in results), results
