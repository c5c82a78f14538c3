"""TieredCache: a memory L1 in front of each backend's cache as L2 (the two replicas share the L2)."""

from __future__ import annotations

import uuid

import anyio
import pytest

from app.backends import (
    Backend,
    BackendUnavailable,
    CacheEntry,
    EntryCacheStore,
    MemoryCache,
    RedisBackend,
    RedisConnection,
    TieredCache,
)

pytestmark = pytest.mark.anyio


def key() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


def l2_of(backend: Backend) -> EntryCacheStore:
    assert isinstance(backend.cache, EntryCacheStore)
    return backend.cache


async def test_reads_fill_l1_for_the_shorter_of_both_ttls(backend: Backend) -> None:
    l2 = l2_of(backend)
    tiered = TieredCache(MemoryCache(100), l2, l1_ttl_seconds=30)
    k = key()
    await l2.set(k, b"v", ttl_seconds=0.2, tags=["t"])
    assert await tiered.get(k) == b"v"
    local = await tiered.l1.get_entry(k)
    assert local is not None
    assert 0 < local.ttl_seconds <= 0.2  # never outlives the L2 entry
    assert local.tags == ("t",)
    await anyio.sleep(0.4)
    assert await tiered.get(k) is None


async def test_writes_go_to_both_tiers(backend: Backend) -> None:
    l2 = l2_of(backend)
    tiered = TieredCache(MemoryCache(100), l2, l1_ttl_seconds=1)
    k = key()
    await tiered.set(k, b"v", ttl_seconds=60, tags=["t"])
    assert await l2.get(k) == b"v"
    local = await tiered.l1.get_entry(k)
    assert local is not None
    assert local.ttl_seconds <= 1


async def test_invalidation_reaches_an_l1_filled_from_l2(backend: Backend) -> None:
    l2 = l2_of(backend)
    tiered = TieredCache(MemoryCache(100), l2, l1_ttl_seconds=30)
    k, tag = key(), key()
    await l2.set(k, b"v", ttl_seconds=60, tags=[tag])
    assert await tiered.get(k) == b"v"  # now in L1, with its tags
    assert await tiered.invalidate_tags([tag]) == 1
    assert await tiered.l1.get(k) is None
    assert await tiered.get(k) is None


async def test_another_replicas_l1_is_stale_for_at_most_l1_ttl(backend: Backend) -> None:
    """The documented bound: an invalidation reaches other replicas' L1 only through expiry."""
    l2 = l2_of(backend)
    here = TieredCache(MemoryCache(100), l2, l1_ttl_seconds=0.3)
    there = TieredCache(MemoryCache(100), l2, l1_ttl_seconds=0.3)
    k, tag = key(), key()
    await here.set(k, b"v", ttl_seconds=60, tags=[tag])
    assert await there.get(k) == b"v"
    assert await here.invalidate_tags([tag]) == 1
    assert await here.get(k) is None
    assert await there.get(k) == b"v"  # stale, from its L1
    await anyio.sleep(0.5)
    assert await there.get(k) is None


async def test_l2_outage_l1_still_serves_and_errors_propagate() -> None:
    down = RedisBackend(RedisConnection("redis://:pw@127.0.0.1:1/0"))  # never opened: every call is unavailable
    tiered = TieredCache(MemoryCache(100), down.cache, l1_ttl_seconds=30)
    await tiered.l1.set("hot", b"v", ttl_seconds=30, tags=["t"])
    assert await tiered.get("hot") == b"v"
    with pytest.raises(BackendUnavailable):
        await tiered.get("cold")
    with pytest.raises(BackendUnavailable):
        await tiered.invalidate_tags(["t"])
    assert await tiered.l1.get("hot") is None  # this replica's L1 was invalidated all the same


class SlowL2(MemoryCache):
    """A memory L2 whose reads take a while, so writes can overtake them."""

    async def get_entry(self, key: str) -> CacheEntry | None:
        entry = await super().get_entry(key)
        await anyio.sleep(0.1)
        return entry


async def test_a_read_racing_an_invalidation_does_not_refill_l1_with_the_dropped_entry() -> None:
    tiered = TieredCache(MemoryCache(100), SlowL2(), l1_ttl_seconds=30)
    await tiered.l2.set("k", b"old", ttl_seconds=60, tags=["t"])
    async with anyio.create_task_group() as tg:
        tg.start_soon(tiered.get, "k")  # reads "old" from L2, slowly
        await anyio.sleep(0.02)
        tg.start_soon(tiered.invalidate_tags, ["t"])
    assert await tiered.l1.get("k") is None
    assert await tiered.get("k") is None


async def test_a_read_racing_a_write_does_not_leave_the_old_value_in_l1() -> None:
    tiered = TieredCache(MemoryCache(100), SlowL2(), l1_ttl_seconds=30)
    await tiered.l2.set("k", b"old", ttl_seconds=60)
    async with anyio.create_task_group() as tg:
        tg.start_soon(tiered.get, "k")
        await anyio.sleep(0.02)
        tg.start_soon(lambda: tiered.set("k", b"new", ttl_seconds=60))
    assert await tiered.l1.get("k") == b"new"


def test_l1_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="l1_ttl_seconds"):
        TieredCache(MemoryCache(1), MemoryCache(1), l1_ttl_seconds=0)
