"""Tasks in process memory: the embedded default, correct for exactly one replica.

Atomic on one event loop because no method awaits between reading and writing its state.
"""

from __future__ import annotations

import bisect
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.packs.tasks.models import (
    Task,
    TaskChanges,
    TaskDraft,
    TaskEvent,
    apply_changes,
    deletion_event,
    new_task,
    utc_now,
)
from app.packs.tasks.store import (
    HISTORY_RETENTION_SECONDS,
    ListPage,
    TaskFilter,
    TaskIdTaken,
    TaskLimitReached,
    TaskNotFound,
    VersionConflict,
)


@dataclass
class _Tenant:
    tasks: dict[str, Task] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # sorted order keys
    history: dict[str, list[TaskEvent]] = field(default_factory=dict)


class MemoryTaskStore:
    name = "memory"

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._tenants: dict[str, _Tenant] = {}
        self._secret = secrets.token_bytes(32)
        self._clock = clock
        self._expiring: dict[tuple[str, str], float] = {}  # deleted tasks' histories -> drop time

    def _tenant(self, owner: str) -> _Tenant:
        tenant = self._tenants.get(owner)
        if tenant is None:
            tenant = self._tenants[owner] = _Tenant()
        return tenant

    def _prune(self) -> None:
        now = self._clock()
        for key, deadline in list(self._expiring.items()):
            if deadline <= now:
                del self._expiring[key]
                tenant = self._tenants.get(key[0])
                if tenant is not None:
                    tenant.history.pop(key[1], None)

    async def create(
        self, owner: str, draft: TaskDraft, *, actor: str, max_tasks: int, task_id: str | None = None
    ) -> Task:
        tenant = self._tenant(owner)
        if task_id is not None and task_id in tenant.history:  # this create ran before (see TaskStore)
            existing = tenant.tasks.get(task_id)
            if existing is None:
                raise TaskIdTaken(task_id)
            return existing
        if len(tenant.tasks) >= max_tasks:
            raise TaskLimitReached(max_tasks)
        task, event = new_task(owner, draft, actor=actor, now=utc_now(), task_id=task_id)
        while task.id in tenant.history:  # a random id: 80 bits, never in practice; a derived one: not here
            task, event = new_task(owner, draft, actor=actor, now=utc_now())
        tenant.tasks[task.id] = task
        bisect.insort(tenant.order, task.order_key)
        tenant.history[task.id] = [event]
        return task

    async def get(self, owner: str, task_id: str) -> Task:
        tenant = self._tenants.get(owner)
        task = tenant.tasks.get(task_id) if tenant is not None else None
        if task is None:
            raise TaskNotFound(task_id)
        return task

    async def list_page(
        self, owner: str, *, after: str | None, limit: int, where: TaskFilter, scan_limit: int = 1000
    ) -> ListPage:
        tenant = self._tenants.get(owner)
        if tenant is None:
            return ListPage([], None)
        start = bisect.bisect_right(tenant.order, after) if after is not None else 0
        found: list[Task] = []
        last: str | None = None
        for scanned, key in enumerate(tenant.order[start:]):
            if len(found) >= limit or scanned >= scan_limit:
                return ListPage(found, last)
            last = key
            task = tenant.tasks[key.split(":", 1)[1]]
            if where.matches(task):
                found.append(task)
        return ListPage(found, None)

    def _current(self, owner: str, task_id: str, expected_version: int | None) -> tuple[_Tenant, Task]:
        """The task to change, checked against the version the caller read (if it pinned one)."""
        tenant = self._tenants.get(owner)
        task = tenant.tasks.get(task_id) if tenant is not None else None
        if tenant is None or task is None:
            raise TaskNotFound(task_id)
        if expected_version is not None and task.version != expected_version:
            raise VersionConflict(task_id, expected_version, task.version)
        return tenant, task

    async def update(
        self, owner: str, task_id: str, changes: TaskChanges, *, actor: str, expected_version: int | None = None
    ) -> Task:
        tenant, task = self._current(owner, task_id, expected_version)
        applied = apply_changes(task, changes, actor=actor, now=utc_now())
        if applied is None:
            return task
        updated, event = applied
        tenant.tasks[task_id] = updated
        tenant.history[task_id].append(event)
        return updated

    async def delete(self, owner: str, task_id: str, *, actor: str, expected_version: int | None = None) -> Task:
        self._prune()
        tenant, task = self._current(owner, task_id, expected_version)
        del tenant.tasks[task_id]
        index = bisect.bisect_left(tenant.order, task.order_key)
        del tenant.order[index]
        tenant.history[task_id].append(deletion_event(task, actor=actor, now=utc_now()))
        self._expiring[(owner, task_id)] = self._clock() + HISTORY_RETENTION_SECONDS
        return task

    async def history(self, owner: str, task_id: str, *, after_version: int, limit: int) -> list[TaskEvent]:
        self._prune()
        tenant = self._tenants.get(owner)
        events = tenant.history.get(task_id) if tenant is not None else None
        if events is None:
            raise TaskNotFound(task_id)
        # events[i].version == i + 1: the history has no holes.
        return events[max(after_version, 0) : max(after_version, 0) + limit]

    async def shared_secret(self) -> bytes:
        return self._secret
