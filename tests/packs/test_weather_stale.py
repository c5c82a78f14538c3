"""`app.upstream.stale.LastGoodStore`: the last good answer per key, the weather pack's declared fallback."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from app.backends import BackendUnavailable, MemoryCache
from app.errors import ErrorCode, ServiceError
from app.upstream.stale import LastGoodStore

pytestmark = pytest.mark.anyio


class Answer(BaseModel):
    value: int


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class DeadCache:
    """A cache whose backend is unreachable, as Redis is in an outage."""

    async def get(self, key: str) -> bytes | None:
        raise BackendUnavailable("get: ConnectionError")

    async def set(self, key: str, value: bytes, *, ttl_seconds: float, tags: Sequence[str] = ()) -> None:
        raise BackendUnavailable("set: ConnectionError")

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        raise BackendUnavailable("invalidate: ConnectionError")


def unavailable() -> ServiceError:
    return ServiceError(ErrorCode.UPSTREAM_UNAVAILABLE, "api is unavailable (HTTP 503)", details={"upstream": "api"})


async def test_remembers_and_recalls_with_the_fetch_time() -> None:
    wall = Clock()
    store = LastGoodStore(MemoryCache(), "weather", ttl_seconds=60, clock=wall)
    await store.remember(("berlin", "metric"), Answer(value=7))
    kept = await store.recall(("berlin", "metric"), Answer)
    assert kept is not None
    assert kept[0] == Answer(value=7)
    assert kept[1] == datetime.fromtimestamp(1_000.0, UTC)
    assert await store.recall(("berlin", "imperial"), Answer) is None


async def test_keys_are_hashed_and_namespaced() -> None:
    cache = MemoryCache()
    store = LastGoodStore(cache, "weather", ttl_seconds=60)
    key = store.key(("Berlin; DROP", "metric"))
    assert key.startswith("stale:weather:")
    assert "Berlin" not in key
    assert key != LastGoodStore(cache, "other", ttl_seconds=60).key(("Berlin; DROP", "metric"))


async def test_entries_expire_after_the_ttl() -> None:
    monotonic = Clock()
    store = LastGoodStore(MemoryCache(clock=monotonic), "weather", ttl_seconds=60)
    await store.remember(("oslo",), Answer(value=1))
    monotonic.now += 59
    assert await store.recall(("oslo",), Answer) is not None
    monotonic.now += 2
    assert await store.recall(("oslo",), Answer) is None


async def test_zero_ttl_turns_the_fallback_off() -> None:
    cache = MemoryCache()
    store = LastGoodStore(cache, "weather", ttl_seconds=0)
    assert not store.enabled
    await store.remember(("oslo",), Answer(value=1))
    assert len(cache) == 0
    with pytest.raises(ServiceError) as caught:
        await store.fetch_or_recall(("oslo",), _failing(unavailable()), Answer)
    assert caught.value.error_code is ErrorCode.UPSTREAM_UNAVAILABLE


async def test_fetch_success_is_fresh_and_remembered() -> None:
    store = LastGoodStore(MemoryCache(), "weather", ttl_seconds=60)

    async def fetch() -> Answer:
        return Answer(value=3)

    outcome = await store.fetch_or_recall(("rome",), fetch, Answer)
    assert (outcome.value, outcome.stale, outcome.error) == (Answer(value=3), False, None)
    kept = await store.recall(("rome",), Answer)
    assert kept is not None
    assert kept == (Answer(value=3), outcome.as_of)


@pytest.mark.parametrize(
    "code", [ErrorCode.UPSTREAM_UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.RATE_LIMITED, ErrorCode.UNAVAILABLE]
)
async def test_an_outage_serves_the_last_good_answer_marked_stale(code: ErrorCode) -> None:
    store = LastGoodStore(MemoryCache(), "weather", ttl_seconds=60)
    first = await store.fetch_or_recall(("rome",), _returning(Answer(value=5)), Answer)
    error = ServiceError(code, "down")
    outcome = await store.fetch_or_recall(("rome",), _failing(error), Answer)
    assert outcome.stale is True
    assert outcome.value == Answer(value=5)
    assert outcome.as_of == first.as_of
    assert outcome.error is error
    assert outcome.age_seconds >= 0


async def test_without_a_last_good_answer_the_original_error_is_raised() -> None:
    store = LastGoodStore(MemoryCache(), "weather", ttl_seconds=60)
    error = unavailable()
    with pytest.raises(ServiceError) as caught:
        await store.fetch_or_recall(("nowhere",), _failing(error), Answer)
    assert caught.value is error


@pytest.mark.parametrize("code", [ErrorCode.NOT_FOUND, ErrorCode.VALIDATION_ERROR, ErrorCode.PERMISSION_DENIED])
async def test_caller_errors_never_fall_back(code: ErrorCode) -> None:
    store = LastGoodStore(MemoryCache(), "weather", ttl_seconds=60)
    await store.fetch_or_recall(("paris",), _returning(Answer(value=1)), Answer)
    error = ServiceError(code, "your question is wrong")
    with pytest.raises(ServiceError) as caught:
        await store.fetch_or_recall(("paris",), _failing(error), Answer)
    assert caught.value is error


async def test_a_record_from_another_model_version_counts_as_none() -> None:
    cache = MemoryCache()
    store = LastGoodStore(cache, "weather", ttl_seconds=60)
    await cache.set(
        store.key(("x",)), json.dumps({"as_of": "2025-01-01T00:00:00+00:00", "value": {}}).encode(), ttl_seconds=60
    )
    assert await store.recall(("x",), Answer) is None
    await cache.set(store.key(("y",)), b"not json", ttl_seconds=60)
    assert await store.recall(("y",), Answer) is None


async def test_a_cache_outage_never_fails_the_call() -> None:
    store = LastGoodStore(DeadCache(), "weather", ttl_seconds=60)
    outcome = await store.fetch_or_recall(("vienna",), _returning(Answer(value=2)), Answer)
    assert outcome.value == Answer(value=2)
    error = unavailable()
    with pytest.raises(ServiceError) as caught:
        await store.fetch_or_recall(("vienna",), _failing(error), Answer)
    assert caught.value is error


def test_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="namespace"):
        LastGoodStore(MemoryCache(), "a:b", ttl_seconds=1)
    with pytest.raises(ValueError, match="ttl_seconds"):
        LastGoodStore(MemoryCache(), "weather", ttl_seconds=-1)


def _returning(answer: Answer) -> Callable[[], Awaitable[Answer]]:
    async def fetch() -> Answer:
        return answer

    return fetch


def _failing(error: ServiceError) -> Callable[[], Awaitable[Answer]]:
    async def fetch() -> Answer:
        raise error

    return fetch
