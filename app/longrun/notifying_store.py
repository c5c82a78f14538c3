"""`NotifyingTaskStore`: a `TaskStore` that announces every status change it makes.

Wrapping the store (rather than calling ``publish`` at each place the runner and the extension move
a task) puts the announcement next to the one step that changed the task, so no path can forget it:
created, waiting for input, answered, cancelled, finished. It is published after the store step
succeeded, so a stream that reads the task on hearing it sees the new status. Lease renewals,
hand-backs and claims keep the status (``working``) and announce nothing. A lost announcement costs
only a late update: clients may still poll, and the bus delivers locally while Redis is away.
"""

from __future__ import annotations

from typing import Any

from app.longrun.events import TaskEvents
from app.longrun.records import TaskRecord
from app.longrun.store import TaskStore


class NotifyingTaskStore(TaskStore):
    def __init__(self, inner: TaskStore, events: TaskEvents) -> None:
        self.inner = inner
        self.events = events

    async def create(
        self, record: TaskRecord, *, max_active_per_owner: int, lease_ms: int, answers: dict[str, Any] | None = None
    ) -> bool:
        created = await self.inner.create(
            record, max_active_per_owner=max_active_per_owner, lease_ms=lease_ms, answers=answers
        )
        if created:
            await self.events.publish_task(record.task_id)
        return created

    async def get(self, task_id: str) -> TaskRecord | None:
        return await self.inner.get(task_id)

    async def responses(self, task_id: str) -> dict[str, Any]:
        return await self.inner.responses(task_id)

    async def answer(self, task_id: str, responses: dict[str, Any]) -> None:
        await self.inner.answer(task_id, responses)
        await self.events.publish_task(task_id)  # the last answer turns it back to working

    async def cancel(self, task_id: str) -> None:
        await self.inner.cancel(task_id)
        await self.events.publish_task(task_id)

    async def renew(self, task_id: str, replica: str, lease_ms: int) -> TaskRecord | None:
        return await self.inner.renew(task_id, replica, lease_ms)

    async def await_input(
        self, task_id: str, replica: str, requests: dict[str, Any], request_state: str | None
    ) -> bool:
        waiting = await self.inner.await_input(task_id, replica, requests, request_state)
        if waiting:
            await self.events.publish_task(task_id)
        return waiting

    async def finish(
        self,
        task_id: str,
        replica: str,
        status: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> bool:
        finished = await self.inner.finish(task_id, replica, status, result=result, error=error, message=message)
        if finished:
            await self.events.publish_task(task_id)
        return finished

    async def release(self, task_id: str, replica: str) -> None:
        await self.inner.release(task_id, replica)

    async def claim_orphans(self, replica: str, lease_ms: int, limit: int) -> list[TaskRecord]:
        return await self.inner.claim_orphans(replica, lease_ms, limit)
