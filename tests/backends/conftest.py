"""Fixtures for the backend contract: the same tests run against memory, a real Redis on loopback and
a real Redis Cluster on loopback (3 primaries, 3 replicas: ``redis_cluster``, shared by the session).

``redis_server`` is shared by the session and never stopped; tests that stop, pause or restart
Redis take ``own_redis`` (a fresh server of their own). Each Redis backend gets a unique key
prefix, so tests never see each other's keys.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.backends import Backend, MemoryBackend, RedisBackend, RedisConnection
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis for this test alone: stop it, pause it, restart it."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


# The contract is about state, not speed: generous timeouts, so a loaded CI box (60 concurrent connects
# in the concurrency tests) can't fail it. The outage tests use the production defaults (0.25 s).
LENIENT_SECONDS = 2.0


def unique_prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


def lenient_redis_backend(server: RedisServer | RedisCluster) -> RedisBackend:
    """A Redis backend on the shared server (or cluster) under a prefix of its own, with lenient timeouts."""
    return RedisBackend(
        RedisConnection(
            server.url,
            key_prefix=unique_prefix(),
            mode="cluster" if isinstance(server, RedisCluster) else "single",
            socket_timeout_seconds=LENIENT_SECONDS,
            connect_timeout_seconds=LENIENT_SECONDS,
        )
    )


@pytest.fixture(params=["memory", "redis", "cluster"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    """Each backend, opened."""
    built: Backend
    if request.param == "memory":
        built = MemoryBackend(max_keys=10_000)
    elif request.param == "cluster":
        built = lenient_redis_backend(request.getfixturevalue("redis_cluster"))
    else:
        built = lenient_redis_backend(request.getfixturevalue("redis_server"))
    await built.open()
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def redis_backend(redis_server: RedisServer) -> AsyncIterator[RedisBackend]:
    built = lenient_redis_backend(redis_server)
    await built.open()
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
async def raw_redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain client for looking behind the backend's back (SCRIPT FLUSH, TIME, HGETALL)."""
    client = Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()
