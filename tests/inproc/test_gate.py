"""The gate: readiness and admission follow the serving phase; /mcp refusals always speak JSON-RPC."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest

from app.factory import create_app
from app.settings import Settings
from tests.inproc import harness
from tests.inproc.harness import BASE_URL, Era, InProcessService
from tests.support.rpc import final, legacy_headers

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]


@pytest.fixture
def settings() -> Settings:
    return harness.settings(retry_after_seconds=7)


async def test_ready_once_the_lifespan_has_run(service: InProcessService) -> None:
    ready = await service.http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "healthy"


async def test_not_ready_while_starting() -> None:
    app = create_app(harness.settings(), configure_logs=False)  # lifespan not entered: still starting
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE_URL) as http:
        ready = await http.get("/health/ready")
        live = await http.get("/health/live")
    assert ready.status_code == 503
    assert ready.json()["status"] == "starting"
    assert live.status_code == 200


async def test_draining_is_not_ready_but_still_serves(service: InProcessService, era: Era) -> None:
    assert service.lifecycle.begin_drain()
    ready = await service.http.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "draining"
    assert (await service.call("cheap", era=era))["isError"] is False


async def test_stopping_refuses_new_requests_with_retry_after(service: InProcessService, era: Era) -> None:
    service.lifecycle.begin_drain()
    service.lifecycle.stop_accepting()
    refused = await service.rpc("tools/call", {"name": "cheap", "arguments": {}}, era=era)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "7"
    assert refused.json()["error"] == "shutting_down"
    ready = await service.http.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "stopping"
    # Probes and scrapes still answer, so an orchestrator sees why.
    assert (await service.http.get("/health/live")).status_code == 200
    assert (await service.http.get("/metrics")).status_code == 200


async def test_a_call_in_flight_when_stopping_begins_still_finishes(service: InProcessService, era: Era) -> None:
    results: list[dict[str, Any]] = []

    async def in_flight() -> None:
        results.append(await service.call("one_at_a_time", {"seconds": 0.3}, era=era))

    async with anyio.create_task_group() as group:
        group.start_soon(in_flight)
        await anyio.sleep(0.1)
        assert service.lifecycle.in_flight == 1  # what the runner waits for before it stops
        service.lifecycle.stop_accepting()
        refused = await service.rpc("tools/call", {"name": "cheap", "arguments": {}}, era=era)
        assert refused.status_code == 503
    assert results[0]["isError"] is False
    assert service.lifecycle.in_flight == 0


async def test_a_trailing_slash_is_served_not_redirected(service: InProcessService) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {**legacy_headers(), "authorization": f"Bearer {harness.ALICE}"}
    response = await service.http.post("/mcp/", headers=headers, json=body)
    assert response.status_code == 200
    assert "tools" in final(response)["result"]


async def test_header_whitespace_is_trimmed(service: InProcessService) -> None:
    response = await service.rpc(
        "tools/call", {"name": "cheap", "arguments": {}}, era="modern", headers={"mcp-name": " cheap "}
    )
    assert response.status_code == 200
    assert final(response)["result"]["isError"] is False


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"accept": "text/html"}, 406),
        ({"content-type": "text/plain"}, 400),
        ({"host": "evil.example"}, 421),
    ],
)
async def test_transport_refusals_are_json_rpc_errors(
    service: InProcessService, headers: dict[str, str], status: int
) -> None:
    response = await service.rpc("tools/list", headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["jsonrpc"] == "2.0"
    assert error["id"] is None
    assert error["error"]["code"] == -32600
    assert error["error"]["message"]
