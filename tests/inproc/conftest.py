"""Fixtures of the in-process tier: the test packs on ``sys.path``, a loopback Redis, a running app."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from app.settings import ENV_PREFIX, Settings
from tests.inproc import harness
from tests.inproc.harness import Era, InProcessService
from tests.inproc.packs import installed
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="package", autouse=True)
def test_packs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with installed(tmp_path_factory.mktemp("site")):
        yield


@pytest.fixture(scope="package", autouse=True)
def no_service_environment() -> Iterator[None]:
    """Settings read ``MCPS_*`` variables too: a developer's shell must not change what these tests build."""
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith(ENV_PREFIX)}
    try:
        yield
    finally:
        os.environ.update(saved)


@pytest.fixture(scope="package")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the tier; each app gets its own key prefix, so tests never share keys."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def settings() -> Settings:
    """The app's settings; a module or test overrides this fixture to change them."""
    return harness.settings()


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[InProcessService]:
    async with harness.running(settings) as running:
        yield running


_prefixes = itertools.count()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings selecting the shared-state backend: in-process memory, or the loopback Redis."""
    if request.param == "memory":
        return {}
    server: RedisServer = request.getfixturevalue("redis")
    return {"redis_url": server.url, "redis_key_prefix": f"inproc{next(_prefixes)}:"}


@pytest.fixture(params=harness.ERAS)
def era(request: pytest.FixtureRequest) -> Era:
    """Each protocol era: the handshake era (stateless, no initialize) and 2026-07-28."""
    value: Era = request.param
    return value
