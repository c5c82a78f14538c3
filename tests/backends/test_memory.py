"""Memory stores on a hand-driven clock: exact bucket math, bounds, and the tag index kept tidy."""

from __future__ import annotations

import pytest

from app.backends import MemoryCache, MemoryIdempotencyStore, MemoryRateLimitStore

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_bucket_math_is_exact() -> None:
    clock = Clock()
    store = MemoryRateLimitStore(clock=clock)
    for _ in range(10):
        assert (await store.acquire("k", capacity=10, refill_per_second=2)).allowed
    clock.now += 1.25  # 2.5 tokens
    denied = await store.acquire("k", capacity=10, refill_per_second=2, cost=3)
    assert (denied.allowed, denied.remaining, denied.retry_after_ms) == (False, 2.5, 250)
    allowed = await store.acquire("k", capacity=10, refill_per_second=2, cost=2.5)
    assert (allowed.allowed, allowed.remaining, allowed.retry_after_ms) == (True, 0.0, 0)
    clock.now += 3600
    assert (await store.acquire("k", capacity=10, refill_per_second=2, cost=0)).remaining == 10


async def test_a_clock_going_back_refills_nothing() -> None:
    clock = Clock()
    store = MemoryRateLimitStore(clock=clock)
    await store.acquire("k", capacity=2, refill_per_second=1, cost=2)
    clock.now -= 100
    decision = await store.acquire("k", capacity=2, refill_per_second=1)
    assert (decision.allowed, decision.remaining, decision.retry_after_ms) == (False, 0.0, 1000)


async def test_buckets_are_bounded_and_an_evicted_one_comes_back_full() -> None:
    store = MemoryRateLimitStore(max_keys=2)
    assert (await store.acquire("a", capacity=1, refill_per_second=0.001)).allowed
    assert not (await store.acquire("a", capacity=1, refill_per_second=0.001)).allowed
    await store.acquire("b", capacity=1, refill_per_second=0.001)
    await store.acquire("c", capacity=1, refill_per_second=0.001)  # evicts a, the least recently used
    assert len(store._buckets) == 2
    assert (await store.acquire("a", capacity=1, refill_per_second=0.001)).allowed


async def test_cache_is_lru_bounded_and_the_tag_index_follows_evictions() -> None:
    cache = MemoryCache(max_keys=10)
    for i in range(1000):
        await cache.set(f"k{i}", b"v", ttl_seconds=60, tags=[f"t{i}", "all"])
    assert len(cache) == 10
    assert len(cache._tags) == 11  # ten of its own + "all"
    assert len(cache._tags["all"]) == 10
    await cache.get("k990")  # most recent now
    await cache.set("new", b"v", ttl_seconds=60)  # evicts k991
    assert await cache.get("k990") == b"v"
    assert await cache.get("k991") is None
    assert await cache.invalidate_tags(["all"]) == 9
    assert cache._tags.keys() == set()


async def test_cache_replacing_an_entry_drops_its_old_tags() -> None:
    cache = MemoryCache()
    await cache.set("k", b"1", ttl_seconds=60, tags=["old"])
    await cache.set("k", b"2", ttl_seconds=60, tags=["new"])
    assert await cache.invalidate_tags(["old"]) == 0
    assert await cache.get("k") == b"2"


async def test_cache_expiry_on_the_clock() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    await cache.set("k", b"v", ttl_seconds=10, tags=["t"])
    clock.now += 9.9
    entry = await cache.get_entry("k")
    assert entry is not None
    assert entry.ttl_seconds == pytest.approx(0.1)
    clock.now += 0.1
    assert await cache.get("k") is None
    assert cache._tags == {}


async def test_idempotency_records_are_bounded() -> None:
    store = MemoryIdempotencyStore(max_keys=3)
    for i in range(10):
        await store.begin(f"k{i}", "fp", lock_ttl_seconds=60)
    assert len(store._records) == 3
    assert (await store.begin("k9", "fp", lock_ttl_seconds=60)).status == "in_progress"


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        MemoryCache(max_keys=0)
