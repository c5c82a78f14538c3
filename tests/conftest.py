from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.service import ServiceProcess

ServiceFactory = Callable[..., ServiceProcess]


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[ServiceFactory]:
    """Start real service processes; every one is stopped (SIGTERM) at teardown."""
    started: list[ServiceProcess] = []

    def start(
        env: dict[str, str] | None = None, *, wait_ready: bool = True, args: list[str] | None = None
    ) -> ServiceProcess:
        service = ServiceProcess(env, tmp_path / f"service-{len(started)}.log", args)
        started.append(service)
        return service.start(wait_ready=wait_ready)

    yield start
    for service in started:
        service.stop()


@pytest.fixture(params=["stateless", "stateful"])
def conformance_service(request: pytest.FixtureRequest, service_factory: ServiceFactory) -> ServiceProcess:
    """The service with the conformance pack, in each legacy transport mode."""
    return service_factory({"MCPS_PACKS": "conformance", "MCPS_TRANSPORT_MODE": request.param})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every ``async def`` test on anyio's asyncio backend (the SDK's own test setup)."""
    import inspect

    for item in items:
        function = getattr(item, "function", None)
        if function is not None and inspect.iscoroutinefunction(function):
            item.add_marker(pytest.mark.anyio)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
