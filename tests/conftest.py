from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.redis_cluster import RedisCluster
from tests.support.service import ServiceProcess

ServiceFactory = Callable[..., ServiceProcess]


@contextmanager
def _services(log_dir: Path) -> Iterator[ServiceFactory]:
    started: list[ServiceProcess] = []

    def start(
        env: dict[str, str] | None = None, *, wait_ready: bool = True, args: list[str] | None = None
    ) -> ServiceProcess:
        service = ServiceProcess(env, log_dir / f"service-{len(started)}.log", args)
        started.append(service)
        return service.start(wait_ready=wait_ready)

    try:
        yield start
    finally:
        for service in started:
            service.stop()


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start real service processes for one test; each is stopped (SIGTERM) at teardown."""
    with _services(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def module_service_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceFactory]:
    """The same, shared by a module's read-only tests (a process start costs about a second)."""
    with _services(tmp_path_factory.mktemp("services")) as start:
        yield start


@pytest.fixture(scope="module", params=["stateless", "stateful"])
def conformance_service(request: pytest.FixtureRequest, module_service_factory: ServiceFactory) -> ServiceProcess:
    """The service with the conformance pack, in each legacy-era transport mode."""
    # The suite makes hundreds of calls in seconds: a bucket that never refuses it.
    env = {"MCPS_PACKS": "conformance", "MCPS_TRANSPORT_MODE": request.param, "MCPS_RATE_LIMIT_CAPACITY": "100000"}
    return module_service_factory(env)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real Redis Cluster on loopback (3 primaries, 3 replicas), shared by the session: every user
    takes a key prefix of its own; a test that fails a node over waits until the cluster is ok again."""
    with RedisCluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


# Fixtures that start the service as a child process: a test using any of them (directly or through
# another fixture) is marked `subprocess`, so the quick loop (-m "not subprocess ...") skips it.
SUBPROCESS_FIXTURES = frozenset({"service_factory", "module_service_factory", "conformance_service"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SUBPROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.subprocess)
