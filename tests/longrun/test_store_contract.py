"""The task store contract, run against `MemoryTaskStore` and `RedisTaskStore` (real redis-server).

Leases and expiry are exercised with short lease and ttl values and a wait past them: the tests
assert what the store says afterwards, never how long anything took.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from app.longrun.memory_store import wall_ms
from app.longrun.records import TaskRecord, new_task_id
from app.longrun.store import TaskStore

pytestmark = pytest.mark.anyio

A, B = "replica-a", "replica-b"
LEASE_MS = 60_000


def record(owner: str = "alice", *, replica: str = A, ttl_ms: int = 60_000, rerun_safe: bool = False) -> TaskRecord:
    now = wall_ms()
    return TaskRecord(
        task_id=new_task_id(),
        owner=owner,
        tool="slow_compute",
        arguments={"seconds": 1, "tags": [], "nested": {"empty": {}, "list": [1, "two"]}},
        created_ms=now,
        updated_ms=now,
        ttl_ms=ttl_ms,
        poll_interval_ms=500,
        rerun_safe=rerun_safe,
        lease_owner=replica,
        attempts=1,
    )


async def created(store: TaskStore, **kwargs: Any) -> TaskRecord:
    task = record(**kwargs)
    assert await store.create(task, max_active_per_owner=10, lease_ms=LEASE_MS)
    return task


async def test_a_created_task_reads_back_as_written(store: TaskStore) -> None:
    task = await created(store, rerun_safe=True)
    got = await store.get(task.task_id)
    assert got is not None
    assert (got.owner, got.tool, got.arguments, got.status) == ("alice", "slow_compute", task.arguments, "working")
    assert (got.created_ms, got.ttl_ms, got.poll_interval_ms, got.rerun_safe) == (task.created_ms, 60_000, 500, True)
    assert got.lease_owner == A
    assert got.lease_until_ms > wall_ms()
    assert got.attempts == 1
    assert await store.get(new_task_id()) is None


async def test_the_per_owner_cap_counts_unfinished_tasks_only(store: TaskStore) -> None:
    first, second = record(), record()
    assert await store.create(first, max_active_per_owner=2, lease_ms=LEASE_MS)
    assert await store.create(second, max_active_per_owner=2, lease_ms=LEASE_MS)
    refused = record()
    assert not await store.create(refused, max_active_per_owner=2, lease_ms=LEASE_MS)
    assert await store.get(refused.task_id) is None  # nothing stored
    assert await store.create(record("bob"), max_active_per_owner=2, lease_ms=LEASE_MS)  # another owner
    assert await store.finish(first.task_id, A, "completed", result={"content": []})
    assert await store.create(record(), max_active_per_owner=2, lease_ms=LEASE_MS)


async def test_answers_fill_pending_requests_one_by_one(store: TaskStore) -> None:
    task = await created(store)
    ask = {"method": "elicitation/create", "params": {"message": "?", "requestedSchema": {"required": []}}}
    assert await store.await_input(task.task_id, A, {"first": ask, "second": ask}, "state-1")
    waiting = await store.get(task.task_id)
    assert waiting is not None
    assert waiting.status == "input_required"
    assert waiting.input_requests == {"first": ask, "second": ask}
    assert waiting.request_state == "state-1"

    await store.answer(task.task_id, {"first": {"action": "accept"}, "unknown": {"ignored": True}})
    partial = await store.get(task.task_id)
    assert partial is not None
    assert partial.status == "input_required"
    assert list(partial.input_requests) == ["second"]

    await store.answer(task.task_id, {"second": {"action": "decline"}})
    resumed = await store.get(task.task_id)
    assert resumed is not None
    assert resumed.status == "working"
    assert resumed.input_requests == {}
    assert await store.responses(task.task_id) == {"first": {"action": "accept"}, "second": {"action": "decline"}}


async def test_answers_given_at_creation_are_the_first_answers(store: TaskStore) -> None:
    task = record()
    answers = {"user_name": {"action": "accept", "content": {"name": "Alice"}}}
    assert await store.create(task, max_active_per_owner=10, lease_ms=LEASE_MS, answers=answers)
    assert await store.responses(task.task_id) == answers


async def test_answers_to_a_task_not_waiting_change_nothing(store: TaskStore) -> None:
    task = await created(store)
    await store.answer(task.task_id, {"first": {"action": "accept"}})
    assert await store.responses(task.task_id) == {}
    got = await store.get(task.task_id)
    assert got is not None
    assert got.status == "working"


async def test_cancel_ends_an_unfinished_task_and_is_idempotent(store: TaskStore) -> None:
    task = await created(store)
    await store.cancel(task.task_id)
    await store.cancel(task.task_id)
    got = await store.get(task.task_id)
    assert got is not None
    assert got.status == "cancelled"
    assert got.lease_owner is None
    assert not await store.finish(task.task_id, A, "completed", result={"content": []})  # too late
    after = await store.get(task.task_id)
    assert after is not None
    assert after.status == "cancelled"
    assert after.result is None


async def test_a_finished_task_never_changes(store: TaskStore) -> None:
    task = await created(store)
    result = {"content": [{"type": "text", "text": "done"}], "isError": False}
    assert await store.finish(task.task_id, A, "completed", result=result)
    await store.cancel(task.task_id)
    assert not await store.finish(task.task_id, A, "failed", error={"code": -32603, "message": "x"})
    got = await store.get(task.task_id)
    assert got is not None
    assert got.status == "completed"
    assert got.result == result
    assert got.error is None


async def test_only_the_lease_holder_moves_a_task_forward(store: TaskStore) -> None:
    task = await created(store)
    assert await store.renew(task.task_id, B, LEASE_MS) is None
    assert not await store.await_input(task.task_id, B, {"k": {"method": "x"}}, None)
    assert not await store.finish(task.task_id, B, "completed", result={"content": []})
    renewed = await store.renew(task.task_id, A, LEASE_MS)
    assert renewed is not None
    assert renewed.status == "working"
    failed = {"code": -32603, "message": "boom"}
    assert await store.finish(task.task_id, A, "failed", error=failed, message="boom")
    got = await store.get(task.task_id)
    assert got is not None
    assert got.status == "failed"
    assert got.error == failed
    assert got.status_message == "boom"


async def test_renew_reports_a_cancel_made_elsewhere(store: TaskStore) -> None:
    task = await created(store)
    await store.cancel(task.task_id)
    seen = await store.renew(task.task_id, A, LEASE_MS)
    assert seen is not None
    assert seen.status == "cancelled"


async def test_a_lapsed_lease_is_claimed_once_by_another_replica(store: TaskStore) -> None:
    task = record()
    assert await store.create(task, max_active_per_owner=10, lease_ms=50)
    live = await created(store)  # a healthy task is never claimed
    await anyio.sleep(0.2)
    claimed = await store.claim_orphans(B, LEASE_MS, 10)
    assert [c.task_id for c in claimed] == [task.task_id]
    assert claimed[0].lease_owner == B
    assert claimed[0].attempts == 2
    assert await store.claim_orphans(A, LEASE_MS, 10) == []  # once
    assert await store.renew(task.task_id, A, LEASE_MS) is None  # the old holder lost it
    assert not await store.finish(task.task_id, A, "completed", result={"content": []})
    assert await store.finish(task.task_id, B, "completed", result={"content": []})
    assert (await store.get(live.task_id)) is not None


async def test_a_released_task_is_claimable_at_once(store: TaskStore) -> None:
    task = await created(store)
    await store.release(task.task_id, B)  # not B's: nothing happens
    assert await store.claim_orphans(B, LEASE_MS, 10) == []
    await store.release(task.task_id, A)
    claimed = await store.claim_orphans(B, LEASE_MS, 10)
    assert [c.task_id for c in claimed] == [task.task_id]


async def test_a_task_expires_ttl_after_its_last_write_and_renewals_keep_it(store: TaskStore) -> None:
    kept, dropped = record(ttl_ms=300), record(ttl_ms=300)
    for task in (kept, dropped):
        assert await store.create(task, max_active_per_owner=10, lease_ms=LEASE_MS)
    for _ in range(6):
        await anyio.sleep(0.1)
        assert await store.renew(kept.task_id, A, LEASE_MS) is not None
    assert await store.get(dropped.task_id) is None
    assert await store.get(kept.task_id) is not None
