"""The runner on a memory store with a scripted invoker: what ends a run, and how (no app, no I/O)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from app.backends import BackendUnavailable
from app.longrun.memory_store import MemoryTaskStore, wall_ms
from app.longrun.records import TaskRecord, new_task_id
from app.longrun.runner import InputWanted, Outcome, RunnerConfig, TaskRunner

pytestmark = pytest.mark.anyio

CONFIG = RunnerConfig(lease_seconds=5, check_seconds=0.02, max_run_seconds=60, max_running=10, max_result_bytes=1024)


class Script:
    """An invoker that waits on ``release`` (if set) and then answers ``outcome``."""

    def __init__(self, outcome: Outcome | InputWanted, release: anyio.Event | None = None) -> None:
        self.outcome = outcome
        self.release = release
        self.calls = 0
        self.cancelled = False

    async def __call__(self, record: TaskRecord, answers: dict[str, Any], state: str | None) -> Any:
        self.calls += 1
        try:
            if self.release is not None:
                await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
        return self.outcome


@pytest.fixture
async def store() -> MemoryTaskStore:
    return MemoryTaskStore()


async def started(runner: TaskRunner, *, rerun_safe: bool = False) -> TaskRecord:
    now = wall_ms()
    record = TaskRecord(new_task_id(), "alice", "tool", {}, now, now, 60_000, 500, rerun_safe)
    record.lease_owner, record.attempts = runner.replica, 1
    assert await runner.store.create(record, max_active_per_owner=10, lease_ms=CONFIG.lease_ms)
    runner.launch(record)
    return record


@pytest.fixture
async def host() -> AsyncIterator[anyio.abc.TaskGroup]:
    async with anyio.create_task_group() as group:
        yield group
        group.cancel_scope.cancel()


async def ended(store: MemoryTaskStore, task_id: str) -> TaskRecord:
    with anyio.fail_after(10):
        while True:
            record = await store.get(task_id)
            assert record is not None
            if record.terminal:
                return record
            await anyio.sleep(0.01)


async def test_a_result_over_the_size_cap_ends_the_task_failed(store: MemoryTaskStore, host: Any) -> None:
    big = Outcome("completed", result={"content": [{"type": "text", "text": "x" * 5000}]})
    runner = TaskRunner(store, CONFIG, Script(big))
    await host.start(runner.run)
    record = await ended(store, (await started(runner)).task_id)
    assert record.status == "failed"
    assert record.result is None
    assert record.error is not None
    assert "more than this service keeps (1024)" in record.error["message"]


async def test_a_cancel_stops_the_running_tool(store: MemoryTaskStore, host: Any) -> None:
    script = Script(Outcome("completed", result={"content": []}), anyio.Event())
    runner = TaskRunner(store, CONFIG, script)
    await host.start(runner.run)
    task = await started(runner)
    await anyio.sleep(0.05)
    await store.cancel(task.task_id)  # as another replica would: the check-in notices
    with anyio.fail_after(10):
        while runner.running:
            await anyio.sleep(0.01)
    assert script.cancelled
    record = await store.get(task.task_id)
    assert record is not None
    assert record.status == "cancelled"


async def test_a_run_past_its_time_limit_ends_failed(store: MemoryTaskStore, host: Any) -> None:
    config = RunnerConfig(5, 0.02, max_run_seconds=0.1, max_running=10, max_result_bytes=1024)
    runner = TaskRunner(store, config, Script(Outcome("completed", result={}), anyio.Event()))
    await host.start(runner.run)
    record = await ended(store, (await started(runner)).task_id)
    assert record.status == "failed"
    assert record.error is not None
    assert record.error["data"]["code"] == "TIMEOUT"


async def test_drain_hands_back_what_it_cannot_finish(store: MemoryTaskStore, host: Any) -> None:
    runner = TaskRunner(store, CONFIG, Script(Outcome("completed", result={}), anyio.Event()))
    await host.start(runner.run)
    rerun = await started(runner, rerun_safe=True)
    once = await started(runner)
    await anyio.sleep(0.05)
    await runner.drain(0.05)
    assert runner.running == 0
    released = await store.get(rerun.task_id)
    assert released is not None
    assert released.status == "working"
    assert released.lease_owner is None
    failed = await store.get(once.task_id)
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error["data"]["code"] == "UNAVAILABLE"
    assert failed.error["data"]["retryable"] is True
    claimed = await store.claim_orphans("another", CONFIG.lease_ms, 10)
    assert [c.task_id for c in claimed] == [rerun.task_id]


async def test_a_tool_asking_again_for_answered_input_fails_instead_of_looping(
    store: MemoryTaskStore, host: Any
) -> None:
    asks = InputWanted({"k": {"method": "elicitation/create"}}, None)
    runner = TaskRunner(store, CONFIG, Script(asks))
    await host.start(runner.run)
    task = await started(runner)
    with anyio.fail_after(10):
        while (current := await store.get(task.task_id)) is not None and current.status != "input_required":
            await anyio.sleep(0.01)
    await store.answer(task.task_id, {"k": {"action": "accept"}})
    record = await ended(store, task.task_id)
    assert record.status == "failed"
    assert record.error is not None
    assert "asked again" in record.error["message"]


async def test_a_failing_invoker_fails_its_task_and_the_runner_keeps_going(store: MemoryTaskStore, host: Any) -> None:
    class Broken:
        calls = 0

        async def __call__(self, record: TaskRecord, answers: dict[str, Any], state: str | None) -> Any:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("a bug")
            return Outcome("completed", result={"content": []})

    runner = TaskRunner(store, CONFIG, Broken())
    await host.start(runner.run)
    broken = await ended(store, (await started(runner)).task_id)
    assert broken.status == "failed"
    assert broken.error is not None
    assert broken.error["data"]["code"] == "INTERNAL_ERROR"
    fine = await ended(store, (await started(runner)).task_id)
    assert fine.status == "completed"


async def test_an_unreachable_store_leaves_the_task_to_the_sweeper_not_failed(host: Any) -> None:
    class Flaky(MemoryTaskStore):
        outage = True

        async def responses(self, task_id: str) -> dict[str, Any]:
            if self.outage:
                raise BackendUnavailable("redis: down")
            return await super().responses(task_id)

    store = Flaky()
    runner = TaskRunner(store, CONFIG, Script(Outcome("completed", result={"content": []})))
    await host.start(runner.run)
    task = await started(runner)
    with anyio.fail_after(10):
        while runner.running:
            await anyio.sleep(0.01)
    left = await store.get(task.task_id)
    assert left is not None
    assert left.status == "working"  # not failed: its lease lapses and another run decides
    store.outage = False
    assert runner.has_room()
