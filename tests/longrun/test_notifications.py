"""Task status notifications, the logic in process: which store steps announce a change, how the bus
carries a task change (only to task listeners, across replicas through a real Redis), and what a
listen's ``taskIds`` may be."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest
from mcp.server.subscriptions import ServerEvent, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from mcp_types import SubscriptionFilter

from app.backends import RedisConnection
from app.backends.subscriptions import RedisSubscriptionBus, TaskChanged, decode, encode
from app.longrun.events import LocalTaskEvents
from app.longrun.listen import MAX_TASK_IDS, _honored, requested_task_ids
from app.longrun.memory_store import MemoryTaskStore, wall_ms
from app.longrun.notifying_store import NotifyingTaskStore
from app.longrun.records import TaskRecord, notification_params
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio

LEASE_MS = 5000


def record(task_id: str, *, owner: str = "alice") -> TaskRecord:
    now = wall_ms()
    return TaskRecord(
        task_id=task_id,
        owner=owner,
        tool="slow_compute",
        arguments={},
        created_ms=now,
        updated_ms=now,
        ttl_ms=60_000,
        poll_interval_ms=500,
        rerun_safe=True,
        lease_owner="replica-a",
    )


async def status(store: NotifyingTaskStore, task_id: str) -> str:
    task = await store.get(task_id)
    assert task is not None
    return task.status


@pytest.fixture
def heard() -> list[str]:
    return []


@pytest.fixture
def store(heard: list[str]) -> NotifyingTaskStore:
    events = LocalTaskEvents()
    events.subscribe_tasks(heard.append)
    return NotifyingTaskStore(MemoryTaskStore(max_tasks=100), events)


async def test_every_status_change_is_announced_once_and_nothing_else_is(
    store: NotifyingTaskStore, heard: list[str]
) -> None:
    assert await store.create(record("t1"), max_active_per_owner=5, lease_ms=LEASE_MS)
    assert heard == ["t1"]  # created: working
    await store.renew("t1", "replica-a", LEASE_MS)
    await store.get("t1")
    assert heard == ["t1"]  # a renewal and a read change no status
    assert await store.await_input("t1", "replica-a", {"confirm": {"method": "elicitation/create"}}, None)
    assert heard == ["t1", "t1"]  # input_required
    await store.answer("t1", {"confirm": {"action": "accept"}})
    assert heard == ["t1", "t1", "t1"]  # answered: working again
    assert await status(store, "t1") == "working"
    assert await store.finish("t1", "replica-a", "completed", result={"content": [], "isError": False})
    assert heard == ["t1"] * 4
    assert not await store.finish("t1", "replica-a", "failed")  # already ended: refused, not announced
    assert heard == ["t1"] * 4


async def test_a_refused_step_announces_nothing(store: NotifyingTaskStore, heard: list[str]) -> None:
    assert await store.create(record("mine"), max_active_per_owner=1, lease_ms=LEASE_MS)
    assert not await store.create(record("over"), max_active_per_owner=1, lease_ms=LEASE_MS)  # past the cap
    assert not await store.finish("mine", "replica-b", "completed")  # not the lease holder
    assert not await store.await_input("mine", "replica-b", {"k": {}}, None)
    assert heard == ["mine"]
    await store.cancel("mine")
    assert heard == ["mine", "mine"]
    assert await status(store, "mine") == "cancelled"


def test_a_notification_is_the_task_as_tasks_get_answers_it_without_the_result_tag() -> None:
    task = record("t1")
    task.status, task.result = "completed", {"content": [{"type": "text", "text": "done"}], "isError": False}
    body = notification_params(task)
    assert "resultType" not in body
    assert body["taskId"] == "t1"
    assert body["status"] == "completed"
    assert body["result"]["content"][0]["text"] == "done"
    assert {"createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"} <= body.keys()


def test_task_changes_round_trip_through_the_bus_encoding() -> None:
    assert decode(encode(TaskChanged("abc"))) == TaskChanged("abc")
    assert decode(encode(ToolsListChanged())) == ToolsListChanged()
    assert decode('{"kind": "task", "id": 7}') is None  # not a task id: ignored, not delivered
    assert decode('{"kind": "task"}') is None


async def test_a_task_change_reaches_task_listeners_on_every_replica_and_never_the_sdk_streams(
    tmp_path: Path,
) -> None:
    with RedisServer(tmp_path / "redis") as server:
        prefix = f"notify-{uuid.uuid4().hex[:8]}:"
        # Two replicas of one service: a connection each, the same key prefix (so the same channel).
        connection_a, connection_b = (
            RedisConnection(server.url, key_prefix=prefix),
            RedisConnection(server.url, key_prefix=prefix),
        )
        connection_a.open()
        connection_b.open()
        bus_a, bus_b = RedisSubscriptionBus(connection_a), RedisSubscriptionBus(connection_b)
        sdk_events: list[ServerEvent] = []
        tasks_b: list[str] = []
        bus_b.subscribe(sdk_events.append)
        bus_b.subscribe_tasks(tasks_b.append)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(bus_a.run)
                group.start_soon(bus_b.run)
                with anyio.fail_after(10):
                    while not (bus_a.connected and bus_b.connected):
                        await anyio.sleep(0.02)
                await bus_a.publish_task("task-on-a")
                await bus_a.publish(ToolsListChanged())
                with anyio.fail_after(10):
                    while not (tasks_b and sdk_events):
                        await anyio.sleep(0.02)
                group.cancel_scope.cancel()
        finally:
            await connection_a.close()
            await connection_b.close()
    assert tasks_b == ["task-on-a"]
    assert sdk_events == [ToolsListChanged()]  # the SDK's listener never got the task change


def test_a_listen_without_task_ids_is_left_to_the_sdk() -> None:
    assert requested_task_ids(SubscriptionFilter(tools_list_changed=True)) is None


def test_task_ids_are_deduplicated_and_overlong_ones_dropped() -> None:
    wanted = SubscriptionFilter.model_validate({"taskIds": ["a", "b", "a", "x" * 201]})
    assert requested_task_ids(wanted) == ["a", "b"]


@pytest.mark.parametrize(
    "task_ids",
    [["a", 3], "a", [""], ["a"] * (MAX_TASK_IDS + 1), [None]],
    ids=["not-a-string", "not-a-list", "empty-id", "too-many", "null"],
)
def test_bad_task_ids_are_refused_with_invalid_params(task_ids: object) -> None:
    with pytest.raises(MCPError) as refused:
        requested_task_ids(SubscriptionFilter.model_validate({"taskIds": task_ids}))
    assert refused.value.error.code == INVALID_PARAMS
    assert refused.value.error.data == {
        "field": "notifications.taskIds",
        **({"limit": MAX_TASK_IDS} if len(task_ids) > MAX_TASK_IDS else {}),
    }


def test_the_acknowledgement_echoes_what_is_honored() -> None:
    requested = SubscriptionFilter.model_validate(
        {"toolsListChanged": True, "promptsListChanged": False, "taskIds": ["mine", "theirs"]}
    )
    assert _honored(requested, ["mine"]).model_dump(by_alias=True, exclude_none=True) == {
        "toolsListChanged": True,
        "taskIds": ["mine"],
    }
    assert _honored(requested, []).model_dump(by_alias=True, exclude_none=True) == {"toolsListChanged": True}
