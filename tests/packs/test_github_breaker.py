"""The github pack when GitHub fails: retries, the circuit breaker opening and closing, readiness details.

A service of its own (the breaker is process state), with a small breaker: 3 failures open it, it
stays open 2 s, one good probe closes it. No token is configured: the pack works unauthenticated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult

from tests.conftest import ServiceFactory
from tests.support.fake_github import FakeGitHub, repo_json, server_error
from tests.support.service import ServiceProcess

pytestmark = pytest.mark.anyio

OWNER = "octocat"
ATTEMPTS = 3


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as github:
        yield github


@pytest.fixture(scope="module")
def service(fake: FakeGitHub, module_service_factory: ServiceFactory) -> ServiceProcess:
    return module_service_factory(
        {
            "MCPS_PACKS": "github,weather",
            "MCPS_GITHUB_API_URL": fake.api_url,
            "MCPS_RATE_LIMIT_CAPACITY": "100000",
            "MCPS_UPSTREAM_CONNECT_TIMEOUT_SECONDS": "1",
            "MCPS_UPSTREAM_READ_TIMEOUT_SECONDS": "1",
            "MCPS_UPSTREAM_TOTAL_TIMEOUT_SECONDS": "3",
            "MCPS_UPSTREAM_MAX_ATTEMPTS": str(ATTEMPTS),
            "MCPS_BREAKER_FAILURE_THRESHOLD": str(ATTEMPTS),
            "MCPS_BREAKER_WINDOW_SECONDS": "60",
            "MCPS_BREAKER_OPEN_SECONDS": "2",
            "MCPS_BREAKER_HALF_OPEN_SUCCESSES": "1",
        }
    )


async def call(service: ServiceProcess, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    async with Client(service.mcp_url, mode="legacy") as client:
        return await client.call_tool(tool, arguments)


def github_breaker(service: ServiceProcess) -> dict[str, Any]:
    response = httpx2.get(f"{service.base_url}/health/ready")
    assert response.status_code == 200  # an upstream outage never takes the replica out of rotation
    checks = {check["name"]: check for check in response.json()["checks"]}
    upstreams = checks["upstreams"]
    breakers = {b["name"]: b for b in upstreams["breakers"]}
    return {"check": upstreams["status"], **breakers["github"]}


async def test_public_data_works_without_a_token(service: ServiceProcess, fake: FakeGitHub) -> None:
    fake.json(f"/repos/{OWNER}/public", repo_json(OWNER, "public"))
    result = await call(service, "get_repository", {"owner": OWNER, "repo": "public"})
    assert result.is_error is False
    sent = fake.requests_to(f"/repos/{OWNER}/public")[0]
    assert "authorization" not in sent.headers
    assert github_breaker(service)["state"] == "closed"


async def test_5xx_is_retried_then_the_breaker_opens_and_recovers(service: ServiceProcess, fake: FakeGitHub) -> None:
    path = f"/repos/{OWNER}/flaky"
    fake.route(path, server_error(503))

    failed = await call(service, "get_repository", {"owner": OWNER, "repo": "flaky"})
    assert failed.is_error is True
    assert isinstance(failed.structured_content, dict)
    assert failed.structured_content["code"] == "UPSTREAM_UNAVAILABLE"
    assert failed.structured_content["retryable"] is True
    assert fake.count(path) == ATTEMPTS  # retried, then given up; those failures opened the breaker

    state = github_breaker(service)
    assert (state["check"], state["state"]) == ("degraded", "open")
    assert state["failures_in_window"] == ATTEMPTS

    fast = await call(service, "get_repository", {"owner": OWNER, "repo": "flaky"})
    assert isinstance(fast.structured_content, dict)
    assert fast.structured_content["code"] == "UPSTREAM_UNAVAILABLE"
    assert fast.structured_content["details"]["breaker"] == "open"
    assert fast.structured_content["retry_after_ms"] > 0
    assert fake.count(path) == ATTEMPTS  # failed fast: GitHub never saw it

    fake.json(path, repo_json(OWNER, "flaky"))  # GitHub recovers
    with anyio.fail_after(15):
        while True:
            result = await call(service, "get_repository", {"owner": OWNER, "repo": "flaky"})
            if not result.is_error:
                break
            assert isinstance(result.structured_content, dict)
            assert result.structured_content["details"].get("breaker") in ("open", "half_open")
            await anyio.sleep(0.2)
    assert fake.count(path) == ATTEMPTS + 1  # exactly one probe went through, and it closed the breaker
    state = github_breaker(service)
    assert (state["check"], state["state"]) == ("healthy", "closed")
