"""``suggest_subtasks`` where the handshake era has a back-channel: a stateful HTTP session (the real
service under uvicorn) and the local stdio server, both driven by the SDK client and its
``sampling_callback``. A client that never answers is cut off by the sampling timeout with TIMEOUT;
a client without the sampling capability gets CAPABILITY_REQUIRED at once.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from app.auth.api_keys import digest, new_key
from tests.conftest import ServiceFactory
from tests.support.sampling import MODEL, SUGGESTED, FakeModel
from tests.support.service import ServiceProcess

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
KEY = new_key()
SAMPLING_TIMEOUT_SECONDS = "2"


@pytest.fixture(scope="module")
def stateful(module_service_factory: ServiceFactory) -> ServiceProcess:
    return module_service_factory(
        {
            "MCPS_PACKS": "tasks",
            "MCPS_AUTH_DISABLED": "false",
            "MCPS_API_KEYS": f"sha256:{digest(KEY).hex()};principal=sampler;scopes=tasks:read tasks:write",
            "MCPS_TRANSPORT_MODE": "stateful",
            "MCPS_TASKS_SAMPLING_TIMEOUT_SECONDS": SAMPLING_TIMEOUT_SECONDS,
        }
    )


@asynccontextmanager
async def over_http(service: ServiceProcess, model: FakeModel | None) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {KEY}"}, timeout=httpx2.Timeout(30.0, read=60.0))
    transport = streamable_http_client(service.mcp_url, http_client=http)
    async with http, Client(transport, mode="legacy", sampling_callback=model) as client:
        yield client


def over_stdio(tmp_path: Path, model: FakeModel | None, mode: str = "legacy") -> Client:
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "app", "stdio"],
        env={"PYTHONPATH": str(ROOT), "MCPS_TASKS_SAMPLING_TIMEOUT_SECONDS": SAMPLING_TIMEOUT_SECONDS},
        cwd=tmp_path,
    )
    return Client(server, mode=mode, sampling_callback=model)


def structured(result: Any) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


async def suggest(client: Client, title: str) -> dict[str, Any]:
    task = structured(await client.call_tool("create_task", {"title": title}))
    return structured(await client.call_tool("suggest_subtasks", {"task_id": task["id"]}))


async def test_stateful_session_asks_the_clients_model(stateful: ServiceProcess) -> None:
    model = FakeModel()
    async with over_http(stateful, model) as client:
        body = await suggest(client, "Plan the offsite")
    assert body["subtasks"] == SUGGESTED
    assert body["model"] == MODEL
    assert model.asked_about("Plan the offsite")


async def test_stateful_session_without_sampling_capability(stateful: ServiceProcess) -> None:
    async with over_http(stateful, None) as client:
        body = await suggest(client, "No model")
    assert body["code"] == "CAPABILITY_REQUIRED"
    assert body["details"] == {"capability": "sampling", "reason": "client_did_not_declare_sampling"}


async def test_a_client_that_never_answers_gets_timeout(stateful: ServiceProcess) -> None:
    stalled = FakeModel(delay=3600)  # answers long after the sampling timeout
    async with over_http(stateful, stalled) as client:
        body = await suggest(client, "Never answered")
        alive = await client.call_tool("list_tasks", {})  # the session is still usable afterwards
    assert body["code"] == "TIMEOUT"
    assert body["details"]["timeout_seconds"] == float(SAMPLING_TIMEOUT_SECONDS)
    assert body["retryable"] is True
    assert not alive.is_error


@pytest.mark.subprocess
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])  # the back-channel, or InputRequiredResult
async def test_stdio_asks_the_clients_model(tmp_path: Path, mode: str) -> None:
    model = FakeModel()
    async with over_stdio(tmp_path, model, mode) as client:
        body = await suggest(client, "Local planning")
    assert body["subtasks"] == SUGGESTED
    assert model.asked_about("Local planning")


@pytest.mark.subprocess
async def test_stdio_without_sampling_capability(tmp_path: Path) -> None:
    async with over_stdio(tmp_path, None) as client:
        body = await suggest(client, "Local, no model")
    assert body["code"] == "CAPABILITY_REQUIRED"
    assert body["details"]["reason"] == "client_did_not_declare_sampling"
