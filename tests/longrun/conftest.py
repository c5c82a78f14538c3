"""Fixtures for the task store contract: the same tests against memory and a real Redis on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from app.longrun.memory_store import MemoryTaskStore
from app.longrun.redis_store import RedisTaskStore
from app.longrun.store import TaskStore
from tests.backends.conftest import lenient_redis_backend
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[TaskStore]:
    if request.param == "memory":
        yield MemoryTaskStore(max_tasks=1000)
        return
    backend = lenient_redis_backend(request.getfixturevalue("redis_server"))
    built = RedisTaskStore(backend.redis)
    await backend.open()
    try:
        yield built
    finally:
        await backend.close()
