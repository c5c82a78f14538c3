"""The tasks extension through the whole app, in process, on each backend: caps refuse with a
structured error and change nothing, a cancelled task frees its owner's slot, the legacy wire and
undeclared clients get synchronous results."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

from app.settings import Settings
from tests.inproc import harness
from tests.inproc.harness import READER, InProcessService, error_of
from tests.support.rpc import final, modern_headers, modern_meta

pytestmark = pytest.mark.anyio

EXTENSION = "io.modelcontextprotocol/tasks"
_ids = itertools.count(1)


@pytest.fixture
def settings(backend: dict[str, Any]) -> Settings:
    return harness.settings(
        ("conformance",),
        longrun_max_active_per_principal=2,
        longrun_max_running=3,
        longrun_check_seconds=0.05,
        **backend,
    )


async def send(service: InProcessService, method: str, params: dict[str, Any], *, declare: bool = True) -> Any:
    meta = modern_meta()
    if declare:
        meta["io.modelcontextprotocol/clientCapabilities"] = {"extensions": {EXTENSION: {}}}
    name = params.get("name") if method == "tools/call" else params.get("taskId")
    headers = {**modern_headers(method, name), "authorization": f"Bearer {READER}"}
    body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": {**params, "_meta": meta}}
    return final(await service.http.post("/mcp", headers=headers, json=body))


async def start(service: InProcessService, seconds: float = 60) -> str:
    message = await send(service, "tools/call", {"name": "slow_compute", "arguments": {"seconds": seconds}})
    assert message["result"]["resultType"] == "task", message
    task_id: str = message["result"]["taskId"]
    return task_id


async def status(service: InProcessService, task_id: str) -> str:
    value: str = (await send(service, "tasks/get", {"taskId": task_id}))["result"]["status"]
    return value


async def test_a_principal_past_its_task_cap_is_refused_until_one_ends(service: InProcessService) -> None:
    first, _second = await start(service), await start(service)
    refused = await send(service, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 60}})
    error = error_of(refused["result"])
    assert error["code"] == "RATE_LIMITED"
    assert error["retryable"] is True
    assert error["details"] == {"max_active_tasks": 2}
    await send(service, "tasks/cancel", {"taskId": first})
    assert await status(service, first) == "cancelled"
    await start(service)  # the cancelled task's slot is free again


async def test_a_replica_past_its_running_cap_refuses_new_tasks(settings: Settings) -> None:
    one_running = settings.model_copy(update={"longrun_max_running": 1})
    async with harness.running(one_running) as service:
        task_id = await start(service)
        refused = await send(service, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 1}})
        error = error_of(refused["result"])
        assert (error["code"], error["retryable"]) == ("UNAVAILABLE", True)
        await send(service, "tasks/cancel", {"taskId": task_id})


async def test_a_short_task_completes_with_its_result_inlined(service: InProcessService) -> None:
    task_id = await start(service, seconds=0)
    with anyio.fail_after(10):
        while await status(service, task_id) == "working":
            await anyio.sleep(0.05)
    done = (await send(service, "tasks/get", {"taskId": task_id}))["result"]
    assert done["status"] == "completed"
    assert done["result"]["content"][0]["text"] == "computed result after 0s"
    assert isinstance(done["ttlMs"], int)
    assert isinstance(done["pollIntervalMs"], int)
    metrics = (await service.http.get("/metrics")).text
    assert 'mcp_service_task_creations_total{gen_ai_tool_name="slow_compute"} 1.0' in metrics
    assert 'mcp_service_tasks_ended_total{gen_ai_tool_name="slow_compute",status="completed"} 1.0' in metrics
    ready = (await service.http.get("/health/ready")).json()
    tasks = next(check for check in ready["checks"] if check["name"] == "tasks")
    assert (tasks["status"], tasks["running"], tasks["max_running"]) == ("healthy", 0, 3)


async def test_undeclared_and_legacy_clients_run_task_tools_synchronously(service: InProcessService) -> None:
    plain = await send(service, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 0}}, declare=False)
    assert plain["result"]["resultType"] == "complete"
    assert "taskId" not in plain["result"]
    legacy = await service.call("slow_compute", {"seconds": 0}, token=READER, era="legacy")
    assert legacy["content"][0]["text"] == "computed result after 0s"
    required = await send(service, "tools/call", {"name": "failing_job", "arguments": {}}, declare=False)
    assert required["error"]["code"] == -32021
    assert required["error"]["data"] == {"requiredCapabilities": {"extensions": {EXTENSION: {}}}}


async def test_bad_task_requests_are_refused_and_change_nothing(service: InProcessService) -> None:
    task_id = await start(service)
    unknown = await send(service, "tasks/get", {"taskId": "x" * 43})
    assert unknown["error"]["code"] == -32602
    too_long = await send(service, "tasks/get", {"taskId": "x" * 500})
    assert too_long["error"]["code"] == -32602
    not_waiting = await send(
        service, "tasks/update", {"taskId": task_id, "inputResponses": {"k": {"action": "accept"}}}
    )
    assert not_waiting["result"]["resultType"] == "complete"
    assert await status(service, task_id) == "working"
    await send(service, "tasks/cancel", {"taskId": task_id})


async def test_the_tasks_pack_exports_a_report_as_a_task_run_as_its_caller(backend: dict[str, Any]) -> None:
    planner = harness.KEYS["alice"]
    config = harness.settings(
        ("tasks",), api_keys=[harness.key_entry(planner, "planner", "tasks:read tasks:write")], **backend
    )
    async with harness.running(config) as service:
        for title in ("write the report", "send it"):
            created = await service.call("create_task", {"title": title, "priority": 2}, token=planner)
            assert not created.get("isError"), created
        meta = {**modern_meta(), "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION: {}}}}

        async def send_as_planner(method: str, params: dict[str, Any]) -> Any:
            name = params.get("name") if method == "tools/call" else params.get("taskId")
            headers = {**modern_headers(method, name), "authorization": f"Bearer {planner}"}
            body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": {**params, "_meta": meta}}
            return final(await service.http.post("/mcp", headers=headers, json=body))

        made = (await send_as_planner("tools/call", {"name": "export_tasks", "arguments": {}}))["result"]
        assert made["resultType"] == "task"
        with anyio.fail_after(10):
            while (task := (await send_as_planner("tasks/get", {"taskId": made["taskId"]}))["result"])[
                "status"
            ] == "working":
                await anyio.sleep(0.05)
        assert task["status"] == "completed", task
        report = task["result"]["structuredContent"]
        assert report["total"] == 2
        assert report["by_priority"] == {"2": 2}
        assert report["csv"].splitlines()[0] == "id,status,priority,due,title"
        synchronous = await service.call("export_tasks", {}, token=planner, era="legacy")
        assert synchronous["structuredContent"]["total"] == 2


async def test_an_idempotency_key_on_a_task_creating_call_returns_the_same_task(backend: dict[str, Any]) -> None:
    config = harness.settings(("slow",), **backend)
    async with harness.running(config) as service:
        meta = {**modern_meta(), "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION: {}}}}

        async def create(key: str) -> dict[str, Any]:
            params = {"name": "slow_task_write", "arguments": {"seconds": 0.2, "idempotency_key": key}, "_meta": meta}
            headers = {**modern_headers("tools/call", "slow_task_write"), "authorization": f"Bearer {harness.ALICE}"}
            body = {"jsonrpc": "2.0", "id": next(_ids), "method": "tools/call", "params": params}
            result: dict[str, Any] = final(await service.http.post("/mcp", headers=headers, json=body))["result"]
            return result

        first, again, other = await create("k-1"), await create("k-1"), await create("k-2")
        assert first["resultType"] == again["resultType"] == other["resultType"] == "task"
        assert again["taskId"] == first["taskId"]
        assert other["taskId"] != first["taskId"]
