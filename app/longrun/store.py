"""`TaskStore`: where tasks live, so any replica answers for a task another one runs.

Every state change is one atomic step that checks who may make it: only the replica holding a task's
lease moves it forward (input wanted, finished), anyone may cancel an unfinished task, and a finished
task never changes again. A lease not renewed in time (the replica died) lets another replica claim
the task (`claim_orphans`). The caller checks ownership (the principal) before it calls; the store
checks the lease. `MemoryTaskStore` is right for one replica, `RedisTaskStore` for a fleet; both pass
the same contract tests (tests/longrun/test_store_contract.py).

Expiry: a task is kept ``ttl_ms`` after its last change (every write pushes it back), so it is never
dropped earlier than its ``ttlMs`` promises, and a running task (its lease renewals are writes) never
expires under its runner.
"""

from __future__ import annotations

import abc
from typing import Any

from app.longrun.records import TaskRecord


class TaskStore(abc.ABC):
    @abc.abstractmethod
    async def create(
        self, record: TaskRecord, *, max_active_per_owner: int, lease_ms: int, answers: dict[str, Any] | None = None
    ) -> bool:
        """Store a new task leased to ``record.lease_owner`` (with ``answers`` its call already carried);
        False (nothing stored) when its owner already holds ``max_active_per_owner`` unfinished tasks.
        Returns only once a `get` would find it."""

    @abc.abstractmethod
    async def get(self, task_id: str) -> TaskRecord | None: ...

    @abc.abstractmethod
    async def responses(self, task_id: str) -> dict[str, Any]:
        """The client's answers so far to the task's input requests, by request key."""

    @abc.abstractmethod
    async def answer(self, task_id: str, responses: dict[str, Any]) -> None:
        """Keep the answers to requests still pending (others are ignored) and drop those requests; the
        last answer turns an ``input_required`` task back to ``working``."""

    @abc.abstractmethod
    async def cancel(self, task_id: str) -> None:
        """An unfinished task becomes ``cancelled`` (its runner notices and stops); a finished one stays."""

    @abc.abstractmethod
    async def renew(self, task_id: str, replica: str, lease_ms: int) -> TaskRecord | None:
        """Extend ``replica``'s lease; the task as it is now, or None when the lease is no longer
        ``replica``'s (taken over, or the task is gone). A finished task is returned unrenewed."""

    @abc.abstractmethod
    async def await_input(
        self, task_id: str, replica: str, requests: dict[str, Any], request_state: str | None
    ) -> bool:
        """The running task waits for the client: ``input_required`` with these requests."""

    @abc.abstractmethod
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
        """End the task (``completed``/``failed``) if ``replica`` holds it and it is unfinished."""

    @abc.abstractmethod
    async def release(self, task_id: str, replica: str) -> None:
        """Give the lease back (shutdown): another replica may claim the task at once."""

    @abc.abstractmethod
    async def claim_orphans(self, replica: str, lease_ms: int, limit: int) -> list[TaskRecord]:
        """Take over up to ``limit`` unfinished tasks whose lease lapsed; each claim counts an attempt."""
