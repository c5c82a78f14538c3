"""`MemoryTaskStore`: tasks in this process, for one replica (a restart loses them; a fleet needs Redis).

Bounded: at most ``max_tasks`` kept; expired ones are dropped as they are met and on every sweep, and
a create past the bound is refused like a full owner (the caller answers a structured refusal).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from app.longrun.records import TaskRecord
from app.longrun.store import TaskStore

WallClockMs = Callable[[], int]


def wall_ms() -> int:
    return int(time.time() * 1000)


class MemoryTaskStore(TaskStore):
    def __init__(self, max_tasks: int = 100_000, *, clock: WallClockMs = wall_ms) -> None:
        self._max = max_tasks
        self._clock = clock
        self._tasks: dict[str, TaskRecord] = {}
        self._answers: dict[str, dict[str, Any]] = {}
        self._expires: dict[str, int] = {}

    def _touch(self, record: TaskRecord, *, changed: bool = True) -> None:
        """Every write keeps the task ``ttl_ms`` more; a visible change also moves ``lastUpdatedAt``."""
        now = self._clock()
        self._expires[record.task_id] = now + record.ttl_ms
        if changed:
            record.updated_ms = max(now, record.updated_ms)

    def _live(self, task_id: str) -> TaskRecord | None:
        record = self._tasks.get(task_id)
        if record is not None and self._expires[task_id] <= self._clock():
            self._drop(task_id)
            return None
        return record

    def _drop(self, task_id: str) -> None:
        self._tasks.pop(task_id, None)
        self._answers.pop(task_id, None)
        self._expires.pop(task_id, None)

    def _held(self, task_id: str, replica: str) -> TaskRecord | None:
        record = self._live(task_id)
        if record is None or record.terminal or record.lease_owner != replica:
            return None
        return record

    async def create(
        self, record: TaskRecord, *, max_active_per_owner: int, lease_ms: int, answers: dict[str, Any] | None = None
    ) -> bool:
        for task_id in list(self._tasks):
            self._live(task_id)
        if len(self._tasks) >= self._max:
            return False
        active = sum(1 for r in self._tasks.values() if r.owner == record.owner and not r.terminal)
        if active >= max_active_per_owner:
            return False
        stored = copy.deepcopy(record)
        stored.lease_until_ms = self._clock() + lease_ms
        self._tasks[record.task_id] = stored
        self._answers[record.task_id] = copy.deepcopy(answers or {})
        self._touch(stored, changed=False)
        return True

    async def get(self, task_id: str) -> TaskRecord | None:
        record = self._live(task_id)
        return copy.deepcopy(record) if record is not None else None

    async def responses(self, task_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._answers.get(task_id, {})) if self._live(task_id) is not None else {}

    async def answer(self, task_id: str, responses: dict[str, Any]) -> None:
        record = self._live(task_id)
        if record is None or record.status != "input_required":
            return
        answered = {key: value for key, value in responses.items() if key in record.input_requests}
        if not answered:
            return
        self._answers[task_id].update(copy.deepcopy(answered))
        for key in answered:
            del record.input_requests[key]
        if not record.input_requests:
            record.status = "working"
        self._touch(record)

    async def cancel(self, task_id: str) -> None:
        record = self._live(task_id)
        if record is None or record.terminal:
            return
        record.status = "cancelled"
        record.status_message = "cancelled by the client"
        record.input_requests = {}
        record.lease_owner, record.lease_until_ms = None, 0
        self._touch(record)

    async def renew(self, task_id: str, replica: str, lease_ms: int) -> TaskRecord | None:
        record = self._live(task_id)
        if record is None:
            return None
        if record.terminal:
            return copy.deepcopy(record)
        if record.lease_owner != replica:
            return None
        record.lease_until_ms = self._clock() + lease_ms
        self._touch(record, changed=False)
        return copy.deepcopy(record)

    async def await_input(
        self, task_id: str, replica: str, requests: dict[str, Any], request_state: str | None
    ) -> bool:
        record = self._held(task_id, replica)
        if record is None:
            return False
        record.status = "input_required"
        record.input_requests = copy.deepcopy(requests)
        record.request_state = request_state
        self._touch(record)
        return True

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
        record = self._held(task_id, replica)
        if record is None:
            return False
        record.status = "completed" if status == "completed" else "failed"
        record.result, record.error, record.status_message = result, error, message
        record.input_requests = {}
        record.lease_owner, record.lease_until_ms = None, 0
        self._touch(record)
        return True

    async def release(self, task_id: str, replica: str) -> None:
        record = self._held(task_id, replica)
        if record is not None:
            record.lease_owner, record.lease_until_ms = None, 0

    async def claim_orphans(self, replica: str, lease_ms: int, limit: int) -> list[TaskRecord]:
        now = self._clock()
        claimed: list[TaskRecord] = []
        for task_id in list(self._tasks):
            record = self._live(task_id)
            if record is None or record.terminal or record.lease_until_ms >= now:
                continue
            if len(claimed) >= limit:
                break
            record.lease_owner, record.lease_until_ms = replica, now + lease_ms
            record.attempts += 1
            self._touch(record, changed=False)
            claimed.append(copy.deepcopy(record))
        return claimed
