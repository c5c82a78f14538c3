"""Upstream attempts and breakers (a real UpstreamClient against a fake API) and Redis (a real one, then gone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ServiceError
from app.metrics import Metrics
from app.observability.upstream import BreakerMetrics, UpstreamObserver
from app.upstream import BreakerRegistry, UpstreamClient
from tests.conftest import ServiceFactory
from tests.observability.scrape import scrape
from tests.support.fake_http import FakeHTTPServer, Reply
from tests.support.redis_server import RedisServer
from tests.support.rpc import call_tool, tool_result

pytestmark = pytest.mark.anyio


async def test_upstream_attempts_and_breaker_transitions() -> None:
    metrics = Metrics(multiprocess=False)
    breakers = BreakerRegistry(failure_threshold=2, open_seconds=60)
    observer = UpstreamObserver(metrics, BreakerMetrics(metrics, breakers))
    registry = metrics.registry
    with FakeHTTPServer() as fake:
        fake.route("/ok", Reply.json({"fine": True}))
        fake.route("/down", Reply(503))
        async with UpstreamClient(
            "fakeapi", fake.base_url, breaker=breakers.get("fakeapi"), observer=observer, max_attempts=1
        ) as client:
            await client.request("GET", "/ok")
            assert (
                registry.get_sample_value(
                    "mcp_service_circuit_breaker_state", {"upstream": "fakeapi", "state": "closed"}
                )
                == 1
            )
            for _ in range(3):  # two 503s open the breaker; the third attempt is refused without a request
                with pytest.raises(ServiceError):
                    await client.request("GET", "/down")
        assert fake.count("/down") == 2

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    requests = "mcp_service_upstream_requests_total"
    assert value(requests, upstream="fakeapi", method="GET", status="200") == 1
    assert value(requests, upstream="fakeapi", method="GET", status="503") == 2
    assert value(requests, upstream="fakeapi", method="GET", status="breaker_open") == 1
    durations = "mcp_service_upstream_request_duration_seconds_count"
    assert value(durations, upstream="fakeapi", method="GET", outcome="2xx") == 1
    assert value(durations, upstream="fakeapi", method="GET", outcome="5xx") == 2
    assert value(durations, upstream="fakeapi", method="GET", outcome="breaker_open") is None
    state = "mcp_service_circuit_breaker_state"
    assert value(state, upstream="fakeapi", state="open") == 1
    assert value(state, upstream="fakeapi", state="closed") == 0
    assert value(state, upstream="fakeapi", state="half_open") == 0
    transitions = "mcp_service_circuit_breaker_transitions_total"
    assert value(transitions, upstream="fakeapi", from_state="closed", to_state="open") == 1


def test_redis_latency_errors_and_health(
    service_factory: ServiceFactory, packs_env: dict[str, str], tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "redis") as redis:
        service = service_factory(
            {
                **packs_env,
                "MCPS_PACKS": "obs",
                "MCPS_REDIS_URL": redis.url,
                "MCPS_RATE_LIMIT_CAPACITY": "1000",
                "MCPS_RATE_LIMIT_FALLBACK": "local",
            }
        )
        assert not tool_result(call_tool(service.base_url, "obs_echo", {"text": "up"}))["isError"]
        up = scrape(service.base_url)
        redis.stop()
        assert not tool_result(call_tool(service.base_url, "obs_echo", {"text": "down"}))["isError"]
        down = scrape(service.base_url)

    histogram = "mcp_service_backend_command_duration_seconds_count"
    for operation in ("acquire", "cache get", "cache set", "ping"):
        assert up.value(histogram, backend="redis", operation=operation) >= 1, operation
    assert up.value("mcp_service_dependency_healthy", dependency="redis") == 1
    assert (
        up.value("mcp_service_backend_errors_total", backend="redis", operation="acquire", error="ConnectionError") == 0
    )

    assert down.value("mcp_service_dependency_healthy", dependency="redis") == 0
    assert down.value("mcp_service_dependency_healthy", dependency="rate_limiter") == 0  # degraded: local fallback
    assert down.value("mcp_service_ready") == 1  # Redis is not required for readiness
    errors = "mcp_service_backend_errors_total"
    assert down.delta(up, errors, backend="redis", operation="acquire", error="ConnectionError") == 1
    assert down.delta(up, errors, backend="redis", operation="ping", error="ConnectionError") >= 1
    decisions = "mcp_service_rate_limit_decisions_total"
    assert down.delta(up, decisions, decision="allowed", source="local") == 1
    assert down.delta(up, decisions, decision="allowed", source="redis") == 0
