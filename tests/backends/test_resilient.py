"""The resilient limiter against a real Redis that goes away and comes back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import pytest

from app.backends import MemoryRateLimitStore, RateDecision, RedisBackend, RedisConnection, ResilientRateLimiter
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio

LOGGER = "app.backends.resilient"
RECHECK = 0.3


class CountingStore:
    """A real store, counted: shows when the limiter stops calling the primary."""

    def __init__(self, inner: RedisBackend) -> None:
        self.inner = inner
        self.calls = 0

    async def acquire(self, key: str, *, capacity: float, refill_per_second: float, cost: float = 1.0) -> RateDecision:
        self.calls += 1
        return await self.inner.rate_limits.acquire(
            key, capacity=capacity, refill_per_second=refill_per_second, cost=cost
        )


@pytest.fixture
async def primary(own_redis: RedisServer) -> AsyncIterator[CountingStore]:
    backend = RedisBackend(RedisConnection(own_redis.url, key_prefix="resilient:"))
    await backend.open()
    try:
        yield CountingStore(backend)
    finally:
        await backend.close()


def limiter(primary: CountingStore, policy: str, local_share: float = 1.0) -> ResilientRateLimiter:
    return ResilientRateLimiter(
        primary,
        fallback_policy=policy,  # type: ignore[arg-type]
        local=MemoryRateLimitStore(),
        local_share=local_share,
        recheck_seconds=RECHECK,
    )


async def take(rl: ResilientRateLimiter, n: int, key: str = "k", capacity: float = 4) -> list[RateDecision]:
    return [await rl.acquire(key, capacity=capacity, refill_per_second=0.001) for _ in range(n)]


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


@pytest.mark.parametrize("policy", ["local", "allow", "deny"])
async def test_outage_fallback_and_recovery(
    policy: str, primary: CountingStore, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    rl = limiter(primary, policy, local_share=0.5)
    assert [d.source for d in await take(rl, 1)] == ["redis"]
    assert (await rl.health()).status == "healthy"

    own_redis.stop()
    decisions = await take(rl, 4, key="outage")
    assert {d.source for d in decisions} == {policy}
    if policy == "local":  # capacity 4 x share 0.5 = 2 per replica
        assert [d.allowed for d in decisions] == [True, True, False, False]
        assert decisions[-1].retry_after_ms > 0
    elif policy == "allow":
        assert all(d.allowed for d in decisions)
    else:
        assert not any(d.allowed for d in decisions)
        assert all(0 < d.retry_after_ms <= RECHECK * 1000 + 1 for d in decisions)  # until the next probe
    assert rl.degraded
    assert primary.calls == 2  # one before the outage, one that failed: then no calls until the recheck
    assert len(warnings(caplog)) == 1
    health = await rl.health()
    assert health.status == "degraded"
    assert health.detail["fallback"] == policy
    assert str(health.detail["error"]).startswith("redis acquire:")
    assert str(own_redis.port) not in str(health.detail)

    await anyio.sleep(RECHECK + 0.1)
    await take(rl, 1)  # a probe, still failing: no second warning
    assert primary.calls == 3
    assert len(warnings(caplog)) == 1

    own_redis.start()
    await anyio.sleep(RECHECK + 0.1)
    assert [d.source for d in await take(rl, 2)] == ["redis", "redis"]
    assert not rl.degraded
    assert (await rl.health()).status == "healthy"
    recovered = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO]
    assert len(recovered) == 1
    assert "back" in recovered[0].getMessage()


async def test_a_small_limit_split_over_many_replicas_still_allows_one_call(
    primary: CountingStore, own_redis: RedisServer
) -> None:
    rl = limiter(primary, "local", local_share=1 / 20)
    own_redis.stop()
    decisions = await take(rl, 3, capacity=10)  # 10 / 20 replicas = 0.5 < cost 1: floored at one call
    assert [d.allowed for d in decisions] == [True, False, False]


async def test_a_new_outage_warns_again(
    primary: CountingStore, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    rl = limiter(primary, "allow")
    for _ in range(2):
        own_redis.stop()
        await take(rl, 2)
        own_redis.start()
        await anyio.sleep(RECHECK + 0.1)
        assert (await take(rl, 1))[0].source == "redis"
    assert len(warnings(caplog)) == 2


async def test_errors_other_than_unavailability_propagate(primary: CountingStore) -> None:
    rl = limiter(primary, "allow")
    with pytest.raises(ValueError, match="capacity"):
        await rl.acquire("k", capacity=0, refill_per_second=1)
    assert not rl.degraded


def test_bad_settings_are_rejected() -> None:
    store = MemoryRateLimitStore()
    with pytest.raises(ValueError, match="fallback_policy"):
        ResilientRateLimiter(store, fallback_policy="maybe", local=store)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="local_share"):
        ResilientRateLimiter(store, fallback_policy="local", local=store, local_share=0)
