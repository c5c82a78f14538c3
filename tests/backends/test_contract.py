"""The backend contract: every test runs against memory and against a real Redis.

Timing: nothing asserts that something happens *before* a deadline except with generous bounds.
Refill rates are either tiny (elapsed time cannot matter) or checked only after a sleep long
enough that the lower bound is certain.
"""

from __future__ import annotations

import asyncio
import uuid

import anyio
import pytest

from app.backends import Backend, CacheStore, IdempotencyBegin, IdempotencyStore, RateLimitStore, TokenBucketStore

pytestmark = pytest.mark.anyio

SLOW = 0.001  # tokens/s: at most a few hundredths of a token during a test


def key() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


async def test_stores_satisfy_the_protocols(backend: Backend) -> None:
    assert isinstance(backend.rate_limits, RateLimitStore)
    assert isinstance(backend.rate_limits, TokenBucketStore)
    assert backend.rate_limits.source == backend.name
    assert isinstance(backend.cache, CacheStore)
    assert isinstance(backend.idempotency, IdempotencyStore)
    assert backend.name in ("memory", "redis")


# --- health ----------------------------------------------------------------------------------------


async def test_ping_and_health(backend: Backend) -> None:
    assert 0 <= await backend.ping() < 1
    result = await backend.health()
    assert result.status == "healthy"
    assert result.detail["backend"] == backend.name


# --- rate limits -----------------------------------------------------------------------------------


async def test_a_new_bucket_is_full_and_allows_exactly_capacity(backend: Backend) -> None:
    k = key()
    decisions = [await backend.rate_limits.acquire(k, capacity=5, refill_per_second=SLOW) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [round(d.remaining) for d in decisions[:5]] == [4, 3, 2, 1, 0]
    assert all(d.retry_after_ms == 0 for d in decisions[:5])
    assert decisions[0].source == backend.name


async def test_retry_after_is_the_time_until_cost_tokens(backend: Backend) -> None:
    k = key()
    assert (await backend.rate_limits.acquire(k, capacity=2, refill_per_second=0.5, cost=2)).allowed
    denied = await backend.rate_limits.acquire(k, capacity=2, refill_per_second=0.5, cost=1)
    assert not denied.allowed
    assert denied.remaining < 0.5
    # 1 token at 0.5/s is 2000 ms, minus whatever trickled in since the first call.
    assert 1000 < denied.retry_after_ms <= 2000
    denied_two = await backend.rate_limits.acquire(k, capacity=2, refill_per_second=0.5, cost=2)
    assert 3000 < denied_two.retry_after_ms <= 4000


async def test_a_denied_call_takes_nothing(backend: Backend) -> None:
    k = key()
    assert (await backend.rate_limits.acquire(k, capacity=3, refill_per_second=SLOW, cost=2)).allowed
    assert not (await backend.rate_limits.acquire(k, capacity=3, refill_per_second=SLOW, cost=2)).allowed
    last = await backend.rate_limits.acquire(k, capacity=3, refill_per_second=SLOW, cost=1)
    assert last.allowed
    assert last.remaining == pytest.approx(0, abs=0.01)


async def test_cost_greater_than_capacity_is_never_allowed(backend: Backend) -> None:
    k = key()
    decision = await backend.rate_limits.acquire(k, capacity=3, refill_per_second=1.5, cost=4)
    assert not decision.allowed
    assert decision.retry_after_ms == 2000  # one full refill period: 3 tokens / 1.5 per s
    assert decision.remaining == pytest.approx(3, abs=0.01)
    # It took nothing: the full bucket is still there for calls that fit.
    assert (await backend.rate_limits.acquire(k, capacity=3, refill_per_second=1.5, cost=3)).allowed


async def test_zero_cost_peeks(backend: Backend) -> None:
    k = key()
    await backend.rate_limits.acquire(k, capacity=4, refill_per_second=SLOW, cost=3)
    peek = await backend.rate_limits.acquire(k, capacity=4, refill_per_second=SLOW, cost=0)
    assert peek.allowed
    assert peek.remaining == pytest.approx(1, abs=0.01)


async def test_fractional_costs_and_remaining(backend: Backend) -> None:
    k = key()
    decisions = [await backend.rate_limits.acquire(k, capacity=2, refill_per_second=SLOW, cost=0.5) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True] * 4 + [False]
    assert [d.remaining for d in decisions[:4]] == pytest.approx([1.5, 1.0, 0.5, 0.0], abs=0.01)


async def test_fractional_refill_rate(backend: Backend) -> None:
    k = key()
    assert (await backend.rate_limits.acquire(k, capacity=1, refill_per_second=0.5)).allowed
    await anyio.sleep(0.6)  # at least 0.3 tokens back, certainly
    partial = await backend.rate_limits.acquire(k, capacity=1, refill_per_second=0.5, cost=0.25)
    assert partial.allowed
    denied = await backend.rate_limits.acquire(k, capacity=1, refill_per_second=0.5, cost=1)
    if not denied.allowed:  # allowed only if this machine stalled for over a second
        assert 0 < denied.retry_after_ms < 2000


async def test_refill_over_time_is_capped_at_capacity(backend: Backend) -> None:
    k = key()
    for _ in range(2):
        assert (await backend.rate_limits.acquire(k, capacity=2, refill_per_second=20)).allowed
    await anyio.sleep(0.3)  # 6 tokens' worth of time, but the bucket holds 2
    after = [await backend.rate_limits.acquire(k, capacity=2, refill_per_second=20) for _ in range(4)]
    assert after[0].allowed
    assert after[0].remaining <= 1.0 + 1e-9
    # 2 from the refilled bucket, plus at most what trickles in during these calls (20/s).
    assert 2 <= sum(d.allowed for d in after) <= 3


async def test_keys_are_isolated(backend: Backend) -> None:
    a, b = key(), key()
    assert (await backend.rate_limits.acquire(a, capacity=1, refill_per_second=SLOW)).allowed
    assert not (await backend.rate_limits.acquire(a, capacity=1, refill_per_second=SLOW)).allowed
    assert (await backend.rate_limits.acquire(b, capacity=1, refill_per_second=SLOW)).allowed


@pytest.mark.parametrize(
    ("capacity", "refill", "cost"),
    [(0, 1, 1), (-1, 1, 1), (1, 0, 1), (1, float("inf"), 1), (1, 1, -1), (1, 1, float("nan"))],
)
async def test_nonsense_bucket_parameters_are_rejected(
    backend: Backend, capacity: float, refill: float, cost: float
) -> None:
    with pytest.raises(ValueError, match="must be"):
        await backend.rate_limits.acquire(key(), capacity=capacity, refill_per_second=refill, cost=cost)


async def test_concurrent_acquires_never_exceed_capacity(backend: Backend) -> None:
    k = key()

    async def one() -> bool:
        return (await backend.rate_limits.acquire(k, capacity=10, refill_per_second=SLOW)).allowed

    results = await asyncio.gather(*(one() for _ in range(60)))
    assert sum(results) == 10


async def test_concurrent_acquires_with_refill_stay_within_the_bound(backend: Backend) -> None:
    k = key()
    rate = 50.0
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def one() -> bool:
        return (await backend.rate_limits.acquire(k, capacity=5, refill_per_second=rate)).allowed

    results: list[bool] = []
    for _ in range(4):
        results += await asyncio.gather(*(one() for _ in range(25)))
    elapsed = loop.time() - started
    assert 5 <= sum(results) <= 5 + rate * elapsed + 1


async def test_many_costs_in_one_step_are_decided_like_sequential_calls(backend: Backend) -> None:
    k = key()
    batch = await backend.rate_limits.acquire_many(
        k, capacity=5, refill_per_second=SLOW, costs=[1.0, 3.0, 2.0, 1.0, 4.0, 1.0]
    )
    # 1 (4 left), 3 (1 left), 2 denied, 1 (0 left), 4 denied, 1 denied: a denied call takes nothing.
    assert [d.allowed for d in batch.decisions] == [True, True, False, True, False, False]
    assert [round(d.remaining) for d in batch.decisions] == [4, 1, 1, 0, 0, 0]
    assert all(d.retry_after_ms >= 1 for d in batch.decisions if not d.allowed)
    assert batch.leased == 0


async def test_a_lease_comes_only_from_the_top_half_and_leaves_the_bucket(backend: Backend) -> None:
    k = key()
    batch = await backend.rate_limits.acquire_many(k, capacity=10, refill_per_second=SLOW, costs=[1.0], lease=100)
    assert batch.decisions[0].allowed
    assert batch.decisions[0].remaining == pytest.approx(9, abs=0.01)  # before the lease
    assert batch.leased == 4  # 9 tokens, at least 5 stay
    peek = await backend.rate_limits.acquire(k, capacity=10, refill_per_second=SLOW, cost=0)
    assert peek.remaining == pytest.approx(5, abs=0.01)
    again = await backend.rate_limits.acquire_many(k, capacity=10, refill_per_second=SLOW, costs=[], lease=100)
    assert (again.decisions, again.leased) == ([], 0)  # half full: nothing more to lease
    small = await backend.rate_limits.acquire_many(key(), capacity=10, refill_per_second=SLOW, costs=[], lease=2)
    assert small.leased == 2  # never more than asked


# --- cache -----------------------------------------------------------------------------------------


async def test_cache_get_set_replace(backend: Backend) -> None:
    k = key()
    assert await backend.cache.get(k) is None
    await backend.cache.set(k, b"one", ttl_seconds=60)
    assert await backend.cache.get(k) == b"one"
    await backend.cache.set(k, b"\x00two\xff", ttl_seconds=60)
    assert await backend.cache.get(k) == b"\x00two\xff"


async def test_cache_entries_expire(backend: Backend) -> None:
    short, long = key(), key()
    await backend.cache.set(short, b"v", ttl_seconds=0.15)
    await backend.cache.set(long, b"v", ttl_seconds=60)
    await anyio.sleep(0.4)
    assert await backend.cache.get(short) is None
    assert await backend.cache.get(long) == b"v"


async def test_invalidate_tags_drops_every_tagged_entry(backend: Backend) -> None:
    a, b, c, d = key(), key(), key(), key()
    t1, t2, t3 = key(), key(), key()
    await backend.cache.set(a, b"a", ttl_seconds=60, tags=[t1])
    await backend.cache.set(b, b"b", ttl_seconds=60, tags=[t1, t2])
    await backend.cache.set(c, b"c", ttl_seconds=60, tags=[t2])
    await backend.cache.set(d, b"d", ttl_seconds=60)
    assert await backend.cache.invalidate_tags([t1]) == 2
    assert [await backend.cache.get(x) for x in (a, b, c, d)] == [None, None, b"c", b"d"]
    assert await backend.cache.invalidate_tags([t1, t2, t3]) == 1  # c; t1 is already empty
    assert await backend.cache.get(c) is None
    assert await backend.cache.invalidate_tags([t2]) == 0
    assert await backend.cache.invalidate_tags([]) == 0
    assert await backend.cache.get(d) == b"d"


async def test_an_entry_under_several_invalidated_tags_counts_once(backend: Backend) -> None:
    k, t1, t2 = key(), key(), key()
    await backend.cache.set(k, b"v", ttl_seconds=60, tags=[t1, t2, t1])
    assert await backend.cache.invalidate_tags([t1, t2]) == 1


async def test_expired_entries_do_not_count_as_invalidated(backend: Backend) -> None:
    gone, live, tag = key(), key(), key()
    await backend.cache.set(gone, b"v", ttl_seconds=0.1, tags=[tag])
    await backend.cache.set(live, b"v", ttl_seconds=60, tags=[tag])
    await anyio.sleep(0.3)
    assert await backend.cache.invalidate_tags([tag]) == 1


async def test_a_tag_outlives_short_entries_for_its_long_ones(backend: Backend) -> None:
    short, long, tag = key(), key(), key()
    await backend.cache.set(long, b"long", ttl_seconds=60, tags=[tag])
    await backend.cache.set(short, b"short", ttl_seconds=0.1, tags=[tag])
    await anyio.sleep(0.3)
    assert await backend.cache.invalidate_tags([tag]) == 1
    assert await backend.cache.get(long) is None


async def test_cache_rejects_nonsense_ttl(backend: Backend) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        await backend.cache.set(key(), b"v", ttl_seconds=0)


# --- idempotency -----------------------------------------------------------------------------------


async def test_idempotency_state_machine(backend: Backend) -> None:
    store, k = backend.idempotency, key()
    assert (await store.begin(k, "fp1", lock_ttl_seconds=30)).status == "acquired"
    assert (await store.begin(k, "fp1", lock_ttl_seconds=30)).status == "in_progress"
    assert (await store.begin(k, "fp2", lock_ttl_seconds=30)).status == "mismatch"
    await store.complete(k, "fp1", b"\x00result", ttl_seconds=60)
    done = await store.begin(k, "fp1", lock_ttl_seconds=30)
    assert (done.status, done.result) == ("completed", b"\x00result")
    assert (await store.begin(k, "fp2", lock_ttl_seconds=30)).status == "mismatch"


async def test_release_lets_a_retry_run_again(backend: Backend) -> None:
    store, k = backend.idempotency, key()
    assert (await store.begin(k, "fp1", lock_ttl_seconds=30)).status == "acquired"
    await store.release(k, "fp2")  # not ours: ignored
    assert (await store.begin(k, "fp1", lock_ttl_seconds=30)).status == "in_progress"
    await store.release(k, "fp1")
    assert (await store.begin(k, "fp1", lock_ttl_seconds=30)).status == "acquired"


async def test_release_does_not_drop_a_completed_record(backend: Backend) -> None:
    store, k = backend.idempotency, key()
    await store.begin(k, "fp1", lock_ttl_seconds=30)
    await store.complete(k, "fp1", b"r", ttl_seconds=60)
    await store.release(k, "fp1")
    assert (await store.begin(k, "fp1", lock_ttl_seconds=30)).status == "completed"


async def test_an_expired_lock_frees_the_key(backend: Backend) -> None:
    store, k = backend.idempotency, key()
    assert (await store.begin(k, "fp1", lock_ttl_seconds=0.15)).status == "acquired"
    await anyio.sleep(0.4)  # the worker "crashed"
    assert (await store.begin(k, "fp2", lock_ttl_seconds=30)).status == "acquired"


async def test_complete_does_not_overwrite_another_fingerprint(backend: Backend) -> None:
    store, k = backend.idempotency, key()
    await store.begin(k, "fp1", lock_ttl_seconds=30)
    await store.complete(k, "fp2", b"theirs", ttl_seconds=60)
    assert (await store.begin(k, "fp1", lock_ttl_seconds=30)).status == "in_progress"
    assert (await store.begin(k, "fp2", lock_ttl_seconds=30)).status == "mismatch"


async def test_complete_after_the_lock_expired_is_still_recorded(backend: Backend) -> None:
    store, k = backend.idempotency, key()
    await store.begin(k, "fp1", lock_ttl_seconds=0.1)
    await anyio.sleep(0.3)
    await store.complete(k, "fp1", b"late", ttl_seconds=60)
    assert await store.begin(k, "fp1", lock_ttl_seconds=30) == IdempotencyBegin("completed", b"late")


async def test_completed_records_expire(backend: Backend) -> None:
    store, k = backend.idempotency, key()
    await store.begin(k, "fp1", lock_ttl_seconds=30)
    await store.complete(k, "fp1", b"r", ttl_seconds=0.15)
    await anyio.sleep(0.4)
    assert (await store.begin(k, "fp2", lock_ttl_seconds=30)).status == "acquired"


async def test_concurrent_begins_acquire_exactly_once(backend: Backend) -> None:
    k = key()
    results = await asyncio.gather(*(backend.idempotency.begin(k, "fp", lock_ttl_seconds=30) for _ in range(40)))
    statuses = [r.status for r in results]
    assert statuses.count("acquired") == 1
    assert statuses.count("in_progress") == 39
