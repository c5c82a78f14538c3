"""The `TaskStore` contract, its errors, and how those become caller-facing `ServiceError`s.

Two implementations pass the same tests: `MemoryTaskStore` (one replica) and `RedisTaskStore` (a fleet).
Every write is atomic: the task, its history event and its listing entry change together or not at
all. A store that cannot reach its state raises `app.backends.BackendUnavailable`; a write that
failed after it may have reached the store raises `WriteOutcomeUnknown` (one), which says which
task and which version to look for, since the write may have been applied or may still be.

Other packs reach tasks through the store the tasks pack shares (``TASK_STORE``), always passing
the caller's principal id as ``owner`` (tenancy is the caller's job at this level, exactly as in the tools).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from app.backends import BackendUnavailable
from app.errors import ErrorCode, ServiceError, conflict, not_found, outcome_unknown
from app.packs.tasks.models import Status, Task, TaskChanges, TaskDraft, TaskEvent

HISTORY_RETENTION_SECONDS = 30 * 86_400  # a deleted task's history is kept this long


class TaskNotFound(Exception):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} not found")
        self.task_id = task_id


class VersionConflict(Exception):
    def __init__(self, task_id: str, expected: int | None, current: int) -> None:
        super().__init__(f"task {task_id} is at version {current}, not {expected}")
        self.task_id = task_id
        self.expected = expected
        self.current = current


class WriteOutcomeUnknown(BackendUnavailable):
    """A write failed after it may have reached the store: it may have been applied, or may still be
    when the store resumes (Redis runs a command it received even after the client gave up).

    ``version`` is the task's version if the write was applied (None for a deletion: then the task is gone).
    """

    def __init__(self, action: str, task_id: str, version: int | None, *, converges: bool = False) -> None:
        super().__init__(f"tasks {action}: outcome unknown", maybe_applied=True)
        self.action = action  # create | update | delete
        self.task_id = task_id
        self.version = version
        self.converges = converges  # a create with a derived id: running it again finds this task


class TaskIdTaken(Exception):
    """A create with a derived id (`derived_task_id`) whose task was created before and since deleted."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} was created with this idempotency key and since deleted")
        self.task_id = task_id


class TaskLimitReached(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"task limit of {limit} reached")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: Status | None = None
    priority: int | None = None
    tag: str | None = None

    def matches(self, task: Task) -> bool:
        return (
            (self.status is None or task.status == self.status)
            and (self.priority is None or task.priority == self.priority)
            and (self.tag is None or self.tag in task.tags)
        )


@dataclass(frozen=True, slots=True)
class ListPage:
    tasks: list[Task]
    next_after: str | None  # the order key to continue after; None when the listing is exhausted


class TaskStore(Protocol):
    """Tasks per owner, ordered by (created_at, id). ``owner`` is a principal id."""

    name: str

    async def create(
        self, owner: str, draft: TaskDraft, *, actor: str, max_tasks: int, task_id: str | None = None
    ) -> Task:
        """Store a new task (version 1) and its "created" event; `TaskLimitReached` at ``max_tasks``.

        ``task_id`` (a `derived_task_id`): if that task exists, return it as stored instead (this is
        the same create run again); if it existed and was deleted, `TaskIdTaken`.
        """
        ...

    async def get(self, owner: str, task_id: str) -> Task:
        """The task, or `TaskNotFound` (also for another owner's id)."""
        ...

    async def list_page(
        self, owner: str, *, after: str | None, limit: int, where: TaskFilter, scan_limit: int = 1000
    ) -> ListPage:
        """Up to ``limit`` matching tasks with order key > ``after``, oldest first.

        At most ``scan_limit`` tasks are examined per call, so a rare filter returns a short (even
        empty) page with ``next_after`` set rather than scanning everything: keyset pagination, so a
        walk never skips or repeats a task that existed when it started.
        """
        ...

    async def update(
        self, owner: str, task_id: str, changes: TaskChanges, *, actor: str, expected_version: int | None = None
    ) -> Task:
        """Apply ``changes`` if the task is at ``expected_version`` (any version when None), recording an
        event. Returns the task as stored (unchanged, same version, when nothing would change).
        `VersionConflict` on a stale version; `TaskNotFound`."""
        ...

    async def delete(self, owner: str, task_id: str, *, actor: str, expected_version: int | None = None) -> Task:
        """Remove the task (its history stays for `HISTORY_RETENTION_SECONDS`, ending with a "deleted"
        event); returns the task as it was."""
        ...

    async def history(self, owner: str, task_id: str, *, after_version: int, limit: int) -> list[TaskEvent]:
        """Events with version > ``after_version``, oldest first, at most ``limit``; `TaskNotFound` if the
        task never existed for this owner (or its history expired)."""
        ...

    async def shared_secret(self) -> bytes:
        """A random secret shared by every replica using this store (signs list cursors)."""
        ...


@contextmanager
def task_errors(task_id: str | None = None) -> Iterator[None]:
    """Turn store errors into the `ServiceError` a caller can act on (use around store calls in tools)."""
    try:
        yield
    except TaskNotFound as exc:
        raise not_found("task", task_id=exc.task_id) from None
    except VersionConflict as exc:
        if exc.expected is None:  # an unpinned write lost the race to other writers several times
            message = f"task {exc.task_id} kept changing under concurrent writes (now version {exc.current}); retry"
        else:
            message = (
                f"task {exc.task_id} is at version {exc.current}, not {exc.expected}: it changed since you read it; "
                f"read it again (get_task) and retry with expected_version={exc.current} if your change still applies"
            )
        raise conflict(
            message,
            retryable=exc.expected is None,
            task_id=exc.task_id,
            current_version=exc.current,
            expected_version=exc.expected,
        ) from None
    except TaskIdTaken as exc:
        raise conflict(
            f"this idempotency_key already created task {exc.task_id}, which has since been deleted; "
            "use a new idempotency_key to create another task",
            task_id=exc.task_id,
        ) from None
    except TaskLimitReached as exc:
        raise ServiceError(
            ErrorCode.CONFLICT,
            f"you already hold the maximum of {exc.limit} tasks; delete some before creating more",
            details={"limit": exc.limit},
        ) from None
    except BackendUnavailable as exc:
        raise store_unavailable(exc, task_id) from None


def store_unavailable(exc: BackendUnavailable, task_id: str | None = None) -> ServiceError:
    """What a caller is told when the store failed: never more than is known about a write.

    Not applied (refused before it ran): retryable. Store full (Redis ``maxmemory``): not applied,
    and retrying will not help until an operator frees memory. May have been applied: outcome
    unknown, not retryable as is, with the read that tells (``details.check_with``).
    """
    if isinstance(exc, WriteOutcomeUnknown):
        if exc.action == "create":
            what = f"task {exc.task_id} may have been created"
            how = f"get_task(task_id={exc.task_id!r}) tells whether it exists"
        elif exc.action == "delete":
            what = f"task {exc.task_id} may have been deleted"
            how = f"get_task(task_id={exc.task_id!r}) answers NOT_FOUND if it was"
        else:
            what = f"task {exc.task_id} may have been changed to version {exc.version}"
            how = f"get_task(task_id={exc.task_id!r}) shows version {exc.version} if it was"
        details: dict[str, object] = {"outcome": "unknown", "task_id": exc.task_id, "check_with": "get_task"}
        safe_retry = None
        if exc.converges:
            details["retry_with_same_key"] = True
            safe_retry = (
                "retrying with the same idempotency_key and arguments is safe: it creates the task at most once"
            )
        if exc.version is not None:
            details["version_if_applied"] = exc.version
        return outcome_unknown(
            f"the task store stopped answering after the write was sent: {what}; {how}", details, safe_retry=safe_retry
        )
    if exc.maybe_applied:
        details = {"outcome": "unknown", "check_with": "get_task"}
        if task_id:
            details["task_id"] = task_id
        return outcome_unknown("the task store stopped answering after the write was sent", details)
    details = {"outcome": "not_applied"}
    if task_id:
        details["task_id"] = task_id
    if exc.full:
        details["reason"] = "store_full"
        return ServiceError(
            ErrorCode.UNAVAILABLE,
            "the task store is full (Redis maxmemory): writes are refused until an operator frees memory; "
            "nothing was changed, and reads still work",
            retryable=False,
            details=details,
        )
    return ServiceError(
        ErrorCode.UNAVAILABLE,
        "the task store is unreachable right now; nothing was changed",
        retryable=True,
        retry_after_ms=1000,
        details=details,
    )


async def set_external_link(
    store: TaskStore,
    owner: str,
    task_id: str,
    name: str,
    url: str,
    *,
    actor: str,
    expected_version: int | None = None,
    attempts: int = 5,
) -> Task:
    """Record ``name -> url`` in the task's ``external_links`` (e.g. ``github_issue``), keeping the others.

    With ``expected_version`` the write fails with `VersionConflict` if the task moved on; without it,
    a concurrent change is merged by re-reading (up to ``attempts`` times).
    """
    last: VersionConflict | None = None
    for _ in range(attempts):
        task = await store.get(owner, task_id)
        if expected_version is not None and task.version != expected_version:
            raise VersionConflict(task_id, expected_version, task.version)
        links = {**task.external_links, name: url}
        try:
            return await store.update(
                owner, task_id, TaskChanges(external_links=links), actor=actor, expected_version=task.version
            )
        except VersionConflict as exc:
            if expected_version is not None:
                raise
            last = exc
    assert last is not None
    raise last
