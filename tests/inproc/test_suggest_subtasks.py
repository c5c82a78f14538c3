"""``suggest_subtasks`` (the tasks pack's sampling tool) through the real app, in process, with the SDK client.

2026-07-28: an InputRequiredResult round trip the SDK client drives with its ``sampling_callback``.
Stateless HTTP in the handshake era has no back-channel: a structured CAPABILITY_REQUIRED at once,
never a hang. (The stateful handshake era and stdio, which have a back-channel, are in
tests/packs/test_suggest_subtasks.py: they need a real server.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from app.auth.api_keys import new_key
from tests.inproc import harness
from tests.inproc.harness import BASE_URL, InProcessService, running
from tests.support.rpc import final, modern_headers, modern_meta
from tests.support.sampling import MODEL, SUGGESTED, FakeModel

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]

MODERN = "2026-07-28"
KEYS = {"tasker": new_key(), "other": new_key(), "writer_only": new_key()}


@asynccontextmanager
async def tasks_service(**overrides: Any) -> AsyncIterator[InProcessService]:
    entries = [
        harness.key_entry(KEYS["tasker"], "tasker", "tasks:read tasks:write"),
        harness.key_entry(KEYS["other"], "other", "tasks:read tasks:write"),
        harness.key_entry(KEYS["writer_only"], "writer_only", "tasks:write"),
    ]
    async with running(harness.settings(packs=["tasks"], api_keys=entries, **overrides)) as service:
        yield service


@asynccontextmanager
async def client(service: InProcessService, who: str, *, mode: str, model: FakeModel | None) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=service.app),
        base_url=BASE_URL,
        headers={"authorization": f"Bearer {KEYS[who]}"},
    )
    transport = streamable_http_client(f"{BASE_URL}/mcp", http_client=http)
    async with http, Client(transport, mode=mode, sampling_callback=model) as connected:
        yield connected


def structured(result: Any) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


async def test_2026_07_28_round_trip_through_the_clients_model() -> None:
    model = FakeModel()
    async with tasks_service() as service, client(service, "tasker", mode=MODERN, model=model) as tasker:
        task = structured(await tasker.call_tool("create_task", {"title": "Ship the quarterly report"}))
        result = await tasker.call_tool("suggest_subtasks", {"task_id": task["id"], "max_subtasks": 3})
    assert not result.is_error, result
    body = structured(result)
    assert body["task_id"] == task["id"]
    assert body["subtasks"] == SUGGESTED[:3]  # numbering and bullets removed, cut to max_subtasks
    assert body["model"] == MODEL
    assert len(model.prompts) == 1
    assert model.asked_about("Ship the quarterly report")


async def test_2026_07_28_client_without_sampling_is_told_what_is_missing() -> None:
    async with tasks_service() as service, client(service, "tasker", mode=MODERN, model=None) as tasker:
        task = structured(await tasker.call_tool("create_task", {"title": "No model here"}))
        result = await tasker.call_tool("suggest_subtasks", {"task_id": task["id"]})
    assert result.is_error
    body = structured(result)
    assert body["code"] == "CAPABILITY_REQUIRED"
    assert body["details"] == {"capability": "sampling", "reason": "client_did_not_declare_sampling"}
    assert "sampling" in body["message"]
    assert body["retryable"] is False


# Stateless HTTP has no back-channel; neither has a stateful session whose answers are plain JSON.
NO_BACK_CHANNEL = [{"transport_mode": "stateless"}, {"transport_mode": "stateful", "json_response": True}]


@pytest.mark.parametrize("transport", NO_BACK_CHANNEL, ids=["stateless", "stateful-json"])
@pytest.mark.parametrize("with_model", [True, False])
async def test_handshake_era_answers_at_once_without_a_back_channel(
    with_model: bool, transport: dict[str, Any]
) -> None:
    model = FakeModel() if with_model else None
    async with (
        tasks_service(**transport) as service,
        client(service, "tasker", mode="legacy", model=model) as tasker,
    ):
        task = structured(await tasker.call_tool("create_task", {"title": "Stateless"}))
        result = await tasker.call_tool("suggest_subtasks", {"task_id": task["id"]})
    assert result.is_error
    body = structured(result)
    assert body["code"] == "CAPABILITY_REQUIRED"
    assert body["details"]["reason"] == "no_back_channel"
    assert "MCPS_TRANSPORT_MODE=stateful" in body["message"]
    assert "2026-07-28" in body["message"]
    if model is not None:
        assert model.prompts == []  # nothing was sent that could never be answered


@pytest.mark.parametrize("mode", ["legacy", MODERN])
async def test_only_the_callers_own_tasks_and_only_with_tasks_read(mode: str) -> None:
    model = FakeModel()
    async with tasks_service() as service:
        async with client(service, "tasker", mode=mode, model=model) as tasker:
            task = structured(await tasker.call_tool("create_task", {"title": "Mine"}))
        async with client(service, "other", mode=mode, model=model) as other:
            foreign = await other.call_tool("suggest_subtasks", {"task_id": task["id"]})
        async with client(service, "writer_only", mode=mode, model=model) as writer:
            refused = await writer.call_tool("suggest_subtasks", {"task_id": task["id"]})
    assert structured(foreign)["code"] == "NOT_FOUND"
    assert structured(refused)["code"] == "PERMISSION_DENIED"
    assert structured(refused)["details"]["missing_scopes"] == ["tasks:read"]
    assert model.prompts == []  # another tenant's task never reaches anyone's model


async def modern_call(service: InProcessService, arguments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A raw 2026-07-28 tools/call of suggest_subtasks from a client that declares sampling: its JSON-RPC answer."""
    meta = {**modern_meta(), "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}
    params = {"name": "suggest_subtasks", "arguments": arguments, "_meta": meta, **extra}
    headers = {**modern_headers("tools/call", "suggest_subtasks"), "authorization": f"Bearer {KEYS['tasker']}"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    message: dict[str, Any] = final(await service.http.post("/mcp", headers=headers, json=body))
    return message


async def test_an_answer_cannot_be_replayed_onto_another_task() -> None:
    """The sealed request state binds the sampling answer to the task it was asked about."""
    async with tasks_service() as service:
        async with client(service, "tasker", mode=MODERN, model=FakeModel()) as tasker:
            first = structured(await tasker.call_tool("create_task", {"title": "First"}))
            second = structured(await tasker.call_tool("create_task", {"title": "Second"}))
        asked = (await modern_call(service, {"task_id": first["id"]}))["result"]
        assert asked["resultType"] == "input_required", asked
        assert set(asked["inputRequests"]) == {"subtasks"}
        answer = {"subtasks": {"role": "assistant", "content": {"type": "text", "text": "Do it"}, "model": "m"}}
        replayed = await modern_call(
            service, {"task_id": second["id"]}, inputResponses=answer, requestState=asked["requestState"]
        )
        honest = await modern_call(
            service, {"task_id": first["id"]}, inputResponses=answer, requestState=asked["requestState"]
        )
    # The SDK's boundary binds the sealed state to the request it was issued for (the tool's own check
    # of task, caller and size stands behind it): a replay onto another task is refused.
    assert "result" not in replayed, replayed
    assert replayed["error"]["code"] == -32602
    assert honest["result"]["structuredContent"]["subtasks"] == ["Do it"]
