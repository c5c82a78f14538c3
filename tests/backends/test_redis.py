"""What only the Redis backend has: scripts, Redis' clock, key layout, and outages of a real server."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from importlib import resources
from pathlib import Path

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from app.backends import (
    BackendUnavailable,
    LeasingRateLimiter,
    MemoryBackend,
    MemoryRateLimitStore,
    RedisBackend,
    RedisConnection,
    ResilientRateLimiter,
    build_backend,
    build_rate_limiter,
)
from app.health import HealthRegistry
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio

SLOW = 0.001


def key() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


# --- scripts and clock -------------------------------------------------------------------------------


async def test_noscript_is_recovered_after_script_flush(redis_backend: RedisBackend, raw_redis: Redis) -> None:
    k = key()
    assert (await redis_backend.rate_limits.acquire(k, capacity=5, refill_per_second=SLOW)).allowed
    await redis_backend.cache.set(k, b"v", ttl_seconds=60, tags=["t"])
    await raw_redis.script_flush()
    assert await raw_redis.script_exists(redis_backend.redis._scripts["token_bucket"].sha) == [False]
    decision = await redis_backend.rate_limits.acquire(k, capacity=5, refill_per_second=SLOW)
    assert decision.allowed
    assert decision.remaining == pytest.approx(3, abs=0.01)  # the bucket's state survived, only the script went
    assert await redis_backend.cache.invalidate_tags(["t"]) == 1
    assert (await redis_backend.idempotency.begin(k, "fp", lock_ttl_seconds=30)).status == "acquired"


def test_the_bucket_script_takes_no_timestamp_from_the_client() -> None:
    source = resources.files("app.backends").joinpath("lua", "token_bucket.lua").read_text("utf-8")
    assert "redis.call('TIME')" in source
    code = "\n".join(line.split("--")[0] for line in source.splitlines())  # comments mention ARGV too
    # capacity, rate, lease wanted, then the costs: no "now"
    assert set(re.findall(r"ARGV\[[\w]+\]", code)) == {"ARGV[1]", "ARGV[2]", "ARGV[3]", "ARGV[i]"}  # i: costs
    assert "for i = 4, #ARGV do" in code


async def test_the_bucket_runs_on_redis_time(redis_backend: RedisBackend, raw_redis: Redis) -> None:
    """The stored timestamp is Redis' TIME; an empty bucket stamped 10 s ago on *Redis'* clock has refilled."""
    k = key()
    name = f"{redis_backend.key_prefix}rl:{k}"
    await redis_backend.rate_limits.acquire(k, capacity=5, refill_per_second=1)
    seconds, micros = await raw_redis.time()
    redis_now_ms = seconds * 1000 + micros / 1000
    stored_ts = float(await raw_redis.hget(name, "ts") or "nan")
    assert abs(stored_ts - redis_now_ms) < 5000

    await raw_redis.hset(name, mapping={"tokens": "0", "ts": repr(redis_now_ms - 10_000)})
    decision = await redis_backend.rate_limits.acquire(k, capacity=5, refill_per_second=1)
    assert decision.allowed
    assert decision.remaining == pytest.approx(4, abs=0.1)  # refilled to 5 (capped), took 1


async def test_a_bucket_expires_once_it_would_be_full_again(redis_backend: RedisBackend, raw_redis: Redis) -> None:
    k = key()
    name = f"{redis_backend.key_prefix}rl:{k}"
    await redis_backend.rate_limits.acquire(k, capacity=10, refill_per_second=2, cost=4)
    pttl = await raw_redis.pttl(name)
    assert 2000 < pttl <= 3000  # 4 tokens at 2/s, plus a second of slack


async def test_every_key_is_under_the_prefix(redis_backend: RedisBackend, raw_redis: Redis) -> None:
    k = key()
    await redis_backend.rate_limits.acquire(k, capacity=1, refill_per_second=SLOW)
    await redis_backend.cache.set(k, b"v", ttl_seconds=60, tags=["tag"])
    await redis_backend.idempotency.begin(k, "fp", lock_ttl_seconds=30)
    keys = sorted(
        n.decode() if isinstance(n, bytes) else n for n in await raw_redis.keys(f"{redis_backend.key_prefix}*")
    )
    p = redis_backend.key_prefix
    assert keys == sorted([f"{p}rl:{k}", f"{p}c:{k}", f"{p}t:tag", f"{p}idem:{k}"])


async def test_a_misuse_of_redis_is_a_bug_not_an_outage(redis_backend: RedisBackend, raw_redis: Redis) -> None:
    k = key()
    await raw_redis.set(f"{redis_backend.key_prefix}rl:{k}", "not a hash")
    with pytest.raises(redis_errors.ResponseError, match="WRONGTYPE"):
        await redis_backend.rate_limits.acquire(k, capacity=1, refill_per_second=1)


async def test_a_closed_backend_is_unavailable(redis_server: RedisServer) -> None:
    backend = RedisBackend(RedisConnection(redis_server.url))
    with pytest.raises(BackendUnavailable, match="not open"):
        await backend.rate_limits.acquire("k", capacity=1, refill_per_second=1)
    await backend.open()
    await backend.close()
    with pytest.raises(BackendUnavailable, match="not open"):
        await backend.cache.get("k")


# --- what a failure says about a write (issue 19, M3 and L7) ----------------------------------------


async def test_a_write_cut_off_after_sending_may_have_been_applied_a_read_claims_nothing(
    own_redis: RedisServer,
) -> None:
    conn = RedisConnection(own_redis.url, key_prefix=f"{key()}:", socket_timeout_seconds=0.25)
    backend = RedisBackend(conn)
    await backend.open()
    name = key()
    try:
        await backend.idempotency.begin(name, "fp", lock_ttl_seconds=60)  # script known, connection pooled
        own_redis.pause()
        try:
            with pytest.raises(BackendUnavailable) as write:
                await backend.idempotency.complete(name, "fp", b"result", ttl_seconds=60)
            with pytest.raises(BackendUnavailable) as read:
                await backend.cache.get(name)
        finally:
            own_redis.resume()
        assert (write.value.maybe_applied, write.value.full) == (True, False)
        assert read.value.maybe_applied is False  # a read changes nothing, whatever reached Redis
    finally:
        await backend.close()


async def test_a_refused_connection_is_certainly_not_applied() -> None:
    backend = RedisBackend(RedisConnection(f"redis://127.0.0.1:{free_port()}/0"))
    await backend.open()
    try:
        with pytest.raises(BackendUnavailable) as refused:
            await backend.idempotency.begin(key(), "fp", lock_ttl_seconds=60)
    finally:
        await backend.close()
    assert (refused.value.maybe_applied, refused.value.full) == (False, False)


async def test_maxmemory_is_full_not_unreachable_and_the_health_check_says_degraded(tmp_path: Path) -> None:
    args = ["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]
    with RedisServer(tmp_path / "full", extra_args=args) as server:
        backend = RedisBackend(RedisConnection(server.url, key_prefix=f"{key()}:"))
        await backend.open()
        raw = Redis.from_url(server.url)
        try:
            await raw.config_set("maxmemory", await used_memory(raw) // 2)  # full whatever an empty server uses
            with pytest.raises(BackendUnavailable) as refused:
                await backend.idempotency.begin(key(), "fp", lock_ttl_seconds=60)
            assert (refused.value.full, refused.value.maybe_applied) == (True, False)
            assert await backend.cache.get(key()) is None  # reads still answer
            health = await backend.health()
            assert health.status == "degraded"
            assert health.detail["error"] == "maxmemory reached: writes are refused"
        finally:
            await backend.close()
            await raw.aclose()


async def used_memory(raw: Redis) -> int:
    info = await raw.info("memory")
    return int(info["used_memory"])


def test_build_backend_picks_by_url(redis_server: RedisServer) -> None:
    assert isinstance(build_backend(None), MemoryBackend)
    assert isinstance(build_backend(""), MemoryBackend)
    built = build_backend(redis_server.url, key_prefix="x:", socket_timeout_seconds=0.1)
    assert isinstance(built, RedisBackend)
    assert built.key_prefix == "x:"
    assert built.name == "redis"
    assert built.redis is not None
    assert built.redis.key_prefix == "x:"
    assert build_backend(None).redis is None


async def test_build_rate_limiter_composes_the_wrappers_a_shared_backend_needs(redis_server: RedisServer) -> None:
    memory = MemoryBackend()
    health = HealthRegistry(1.0)
    assert build_rate_limiter(memory, health) is memory.rate_limits  # nothing to save, nothing to survive
    assert await health.run() == []
    redis = RedisBackend(RedisConnection(redis_server.url))
    limiter = build_rate_limiter(redis, health, fallback_policy="deny", local_share=0.25, lease_max=7)
    assert isinstance(limiter, ResilientRateLimiter)
    assert (limiter.fallback_policy, limiter.local_share) == ("deny", 0.25)
    assert isinstance(limiter.local, MemoryRateLimitStore)
    assert isinstance(limiter.primary, LeasingRateLimiter)
    assert limiter.primary.inner is redis.rate_limits
    assert limiter.primary.lease_max == 7
    assert [(c["name"], c["status"], c["required"]) for c in await health.run()] == [("rate_limiter", "healthy", False)]


# --- outages -----------------------------------------------------------------------------------------

PASSWORD = "s3cret-pw-never-shown"


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, with a password (to prove it never leaks into errors)."""
    with RedisServer(tmp_path / "redis", extra_args=["--requirepass", PASSWORD]) as server:
        yield server


@pytest.fixture
async def outage_backend(locked_redis: RedisServer) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(
        RedisConnection(f"redis://:{PASSWORD}@127.0.0.1:{locked_redis.port}/0", key_prefix="outage:")
    )
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


def every_operation(backend: RedisBackend) -> dict[str, Callable[[], Awaitable[object]]]:
    return {
        "acquire": lambda: backend.rate_limits.acquire("k", capacity=5, refill_per_second=1),
        "cache get": lambda: backend.cache.get("k"),
        "cache get_entry": lambda: backend.cache.get_entry("k"),
        "cache set": lambda: backend.cache.set("k", b"v", ttl_seconds=60, tags=["t"]),
        "invalidate": lambda: backend.cache.invalidate_tags(["t"]),
        "begin": lambda: backend.idempotency.begin("k", "fp", lock_ttl_seconds=30),
        "complete": lambda: backend.idempotency.complete("k", "fp", b"r", ttl_seconds=30),
        "release": lambda: backend.idempotency.release("k", "fp"),
        "ping": backend.ping,
    }


async def assert_all_unavailable_quickly(backend: RedisBackend) -> None:
    for name, operation in every_operation(backend).items():
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as caught:
            await operation()
        elapsed = time.monotonic() - started
        # No hang (a hang is the 30 s+ default); loose enough for a loaded CI machine.
        assert elapsed < 3.0, f"{name} took {elapsed:.2f}s"
        assert PASSWORD not in str(caught.value)
        assert "127.0.0.1" not in str(caught.value)
    health = await backend.health()
    assert health.status == "unhealthy"
    assert PASSWORD not in repr(health.detail)


async def assert_all_work(backend: RedisBackend) -> None:
    for operation in every_operation(backend).values():
        await operation()
    assert (await backend.health()).status == "healthy"


async def test_stopped_redis_is_unavailable_fast_then_recovers_by_itself(
    outage_backend: RedisBackend, locked_redis: RedisServer
) -> None:
    await assert_all_work(outage_backend)  # the pool now holds connections Redis is about to close
    locked_redis.stop()
    await assert_all_unavailable_quickly(outage_backend)
    locked_redis.start()
    # The very first call after the restart works: the pool notices the dead connections itself.
    assert (await outage_backend.rate_limits.acquire("fresh", capacity=1, refill_per_second=1)).allowed
    await assert_all_work(outage_backend)


async def test_a_frozen_redis_times_out_instead_of_hanging(
    outage_backend: RedisBackend, locked_redis: RedisServer
) -> None:
    await assert_all_work(outage_backend)
    locked_redis.pause()  # sockets accept, nothing answers: only timeouts can save us
    try:
        await assert_all_unavailable_quickly(outage_backend)
    finally:
        locked_redis.resume()
    await assert_all_work(outage_backend)


async def test_killed_redis_with_aof_keeps_completed_records(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "aof", appendonly=True, appendfsync="always") as server:
        backend = RedisBackend(RedisConnection(server.url, key_prefix="aof:"))
        await backend.open()
        try:
            await backend.idempotency.begin("k", "fp", lock_ttl_seconds=30)
            await backend.idempotency.complete("k", "fp", b"kept", ttl_seconds=600)
            server.stop(kill=True)
            with pytest.raises(BackendUnavailable):
                await backend.idempotency.begin("k", "fp", lock_ttl_seconds=30)
            server.start()
            done = await backend.idempotency.begin("k", "fp", lock_ttl_seconds=30)
            assert (done.status, done.result) == ("completed", b"kept")
        finally:
            await backend.close()
