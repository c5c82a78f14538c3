"""The operation observer: given to the Redis backend when built, told about every round trip.

First what the connection promises any observer (entered around each operation, in its task, seeing
its error), then the Prometheus and tracing observer of `app.observability.backend`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from app.backends import BackendUnavailable, OperationObserver, RedisBackend, RedisConnection
from app.metrics import Metrics
from app.observability import tracing
from app.observability.backend import RedisOperationMetrics
from tests.backends.conftest import LENIENT_SECONDS, unique_prefix
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio

current: ContextVar[str | None] = ContextVar("current", default=None)


class Recorder:
    """An observer that keeps what it was told: (operation, error class or None), and marks the operation."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    @contextmanager
    def operation(self, op: str) -> Iterator[None]:
        token = current.set(op)
        try:
            yield
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, BackendUnavailable) and exc.__cause__ is not None else exc
            self.seen.append((op, type(cause).__name__))
            raise
        else:
            self.seen.append((op, None))
        finally:
            current.reset(token)


def observed(server: RedisServer, observer: OperationObserver) -> RedisBackend:
    return RedisBackend(
        RedisConnection(
            server.url,
            key_prefix=unique_prefix(),
            socket_timeout_seconds=LENIENT_SECONDS,
            connect_timeout_seconds=LENIENT_SECONDS,
            observer=observer,
        )
    )


@pytest.fixture
async def recorded(redis_server: RedisServer) -> AsyncIterator[tuple[RedisBackend, Recorder]]:
    recorder = Recorder()
    backend = observed(redis_server, recorder)
    await backend.open()
    try:
        yield backend, recorder
    finally:
        await backend.close()


def key() -> str:
    return f"k-{uuid.uuid4().hex[:8]}"


async def test_every_store_operation_is_observed_by_name(recorded: tuple[RedisBackend, Recorder]) -> None:
    backend, recorder = recorded
    k = key()
    await backend.rate_limits.acquire(k, capacity=5, refill_per_second=1)
    await backend.cache.set(k, b"v", ttl_seconds=60, tags=["t"])
    await backend.cache.get(k)
    await backend.cache.get_entry(k)
    await backend.cache.invalidate_tags(["t"])
    await backend.idempotency.begin(k, "fp", lock_ttl_seconds=30)
    await backend.idempotency.complete(k, "fp", b"r", ttl_seconds=30)
    await backend.idempotency.release(k, "fp")
    await backend.ping()
    assert recorder.seen == [
        ("acquire", None),
        ("cache set", None),
        ("cache get", None),
        ("cache get", None),
        ("cache invalidate", None),
        ("idempotency begin", None),
        ("idempotency complete", None),
        ("idempotency release", None),
        ("ping", None),
    ]


async def test_what_runs_inside_an_operation_runs_in_the_observers_context(
    recorded: tuple[RedisBackend, Recorder],
) -> None:
    backend, _ = recorded

    async def call(client: Redis) -> str | None:
        return current.get()

    assert await backend.redis.run("probe", call) == "probe"
    assert current.get() is None  # and only inside


async def test_the_observer_sees_the_redis_error_behind_an_outage_and_a_bug(
    recorded: tuple[RedisBackend, Recorder], raw_redis: Redis, own_redis: RedisServer
) -> None:
    backend, recorder = recorded
    k = key()
    await raw_redis.set(f"{backend.key_prefix}rl:{k}", "not a hash")
    with pytest.raises(redis_errors.ResponseError, match="WRONGTYPE"):
        await backend.rate_limits.acquire(k, capacity=1, refill_per_second=1)
    assert recorder.seen[-1] == ("acquire", "ResponseError")

    down = observed(own_redis, recorder)
    await down.open()
    try:
        own_redis.stop()
        with pytest.raises(BackendUnavailable):
            await down.cache.get(k)
        assert recorder.seen[-1] == ("cache get", "ConnectionError")
    finally:
        await down.close()
    with pytest.raises(BackendUnavailable, match="not open"):
        await down.cache.get(k)
    assert recorder.seen[-1] == ("cache get", "BackendUnavailable")  # no Redis error behind it


# --- app.observability.backend -----------------------------------------------------------------


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, {"backend": "redis", **labels}) or 0.0


async def test_metrics_time_each_operation_and_count_errors_by_cause(
    redis_server: RedisServer, own_redis: RedisServer
) -> None:
    metrics = Metrics(multiprocess=False)
    backend = observed(redis_server, RedisOperationMetrics(metrics))
    down = observed(own_redis, RedisOperationMetrics(metrics))
    await backend.open()
    await down.open()
    try:
        for _ in range(3):
            await backend.rate_limits.acquire(key(), capacity=5, refill_per_second=1)
        await backend.ping()
        own_redis.stop()
        with pytest.raises(BackendUnavailable):
            await down.rate_limits.acquire(key(), capacity=5, refill_per_second=1)
    finally:
        await backend.close()
        await down.close()
    durations = "mcp_service_backend_command_duration_seconds_count"
    errors = "mcp_service_backend_errors_total"
    assert sample(metrics, durations, operation="acquire") == 4  # failures are timed too
    assert sample(metrics, durations, operation="ping") == 1
    assert sample(metrics, errors, operation="acquire", error="ConnectionError") == 1
    assert sample(metrics, errors, operation="ping", error="ConnectionError") == 0


async def test_traced_operations_name_their_redis_commands(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = observed(redis_server, RedisOperationMetrics(Metrics(multiprocess=False)))
    await backend.open()

    async def call(client: Redis) -> str | None:
        return tracing.backend_operation.get()  # what the Redis command spans are named after

    try:
        assert await backend.redis.run("untraced", call) is None  # off unless Redis commands are traced
        monkeypatch.setattr(tracing, "redis_commands_traced", lambda: True)
        assert await backend.redis.run("cache get", call) == "cache get"
        assert tracing.backend_operation.get() is None  # and only inside
    finally:
        await backend.close()
