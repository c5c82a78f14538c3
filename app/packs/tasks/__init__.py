"""The tasks pack: per-principal tasks with history, stored in Redis (a fleet) or memory (one replica).

Tools (``tasks:read``): ``get_task``, ``list_tasks``, ``task_history``; (``tasks:write``):
``create_task``, ``update_task``, ``complete_task``, ``delete_task``; ``suggest_subtasks`` (``tasks:read``,
the client's model through sampling, see `sampling`). Resource template ``task://{id}`` and prompt
``triage-tasks`` (``tasks:read``). Settings: ``MCPS_TASKS_MAX_PER_PRINCIPAL``, ``MCPS_TASKS_SAMPLING_*``.

Other packs reach the store by requiring this pack and reading what it shares (see ``github_tasks``)::

    store = pack.shared(TASK_STORE)
    owner = current_principal().id
    with task_errors(task_id):
        task = await store.get(owner, task_id)
        ...  # create the issue
        task = await set_external_link(store, owner, task_id, "github_issue", url, actor=owner,
                                       expected_version=task.version)

Such a tool should declare ``invalidates=("tasks:{principal}",)`` so cached task reads are dropped.
"""

from __future__ import annotations

from app.packs.api import Pack, PackContext, PackStorage, SharedKey
from app.packs.tasks import resources, sampling, tools
from app.packs.tasks.models import Task, TaskChanges, TaskDraft, TaskEvent
from app.packs.tasks.settings import TasksSettings
from app.packs.tasks.store import (
    ListPage,
    TaskFilter,
    TaskIdTaken,
    TaskLimitReached,
    TaskNotFound,
    TaskStore,
    VersionConflict,
    WriteOutcomeUnknown,
    set_external_link,
    task_errors,
)
from app.packs.tasks.store_memory import MemoryTaskStore
from app.packs.tasks.store_redis import RedisTaskStore

__all__ = [
    "TASK_STORE",
    "ListPage",
    "MemoryTaskStore",
    "RedisTaskStore",
    "Task",
    "TaskChanges",
    "TaskDraft",
    "TaskEvent",
    "TaskFilter",
    "TaskIdTaken",
    "TaskLimitReached",
    "TaskNotFound",
    "TaskStore",
    "TasksSettings",
    "VersionConflict",
    "WriteOutcomeUnknown",
    "pack",
    "set_external_link",
    "task_errors",
    "task_store",
]

TASK_STORE: SharedKey[TaskStore] = SharedKey("tasks.store")


def task_store(storage: PackStorage) -> TaskStore:
    """Redis when the service shares a Redis (``MCPS_REDIS_URL``), else memory (one replica)."""
    if storage.redis is None:
        return MemoryTaskStore()
    return RedisTaskStore(storage.redis)


def setup(context: PackContext[TasksSettings]) -> None:
    store = task_store(context.storage)
    context.share(TASK_STORE, store)
    tools.register(context, store)
    sampling.register(context, store)
    resources.register(context, store)


pack = Pack("tasks", setup, settings=TasksSettings)
