"""The tasks pack: per-principal tasks with history, stored in Redis (a fleet) or memory (one replica).

Tools (``tasks:read``): ``get_task``, ``list_tasks``, ``task_history``; (``tasks:write``):
``create_task``, ``update_task``, ``complete_task``, ``delete_task``. Resource template ``task://{id}``
and prompt ``triage-tasks`` (``tasks:read``).

For other packs (e.g. a composed tool that files a GitHub issue for a task)::

    from app.packs.tasks import get_task_store, set_external_link, task_errors

    store = get_task_store(services)
    owner = current_principal().id
    with task_errors(task_id):
        task = await store.get(owner, task_id)
        ...  # create the issue
        task = await set_external_link(store, owner, task_id, "github_issue", url, actor=owner,
                                       expected_version=task.version)

Such a tool should declare ``invalidates=("tasks:{principal}",)`` so cached task reads are dropped.
"""

from __future__ import annotations

import weakref
from typing import Any

from mcp.server.mcpserver import MCPServer

from app.packs.api import Pack
from app.packs.tasks import resources, tools
from app.packs.tasks.models import Task, TaskChanges, TaskDraft, TaskEvent
from app.packs.tasks.store import (
    ListPage,
    TaskFilter,
    TaskLimitReached,
    TaskNotFound,
    TaskStore,
    VersionConflict,
    set_external_link,
    task_errors,
)
from app.packs.tasks.store_memory import MemoryTaskStore
from app.packs.tasks.store_redis import RedisTaskStore
from app.services import Services

__all__ = [
    "ListPage",
    "MemoryTaskStore",
    "RedisTaskStore",
    "Task",
    "TaskChanges",
    "TaskDraft",
    "TaskEvent",
    "TaskFilter",
    "TaskLimitReached",
    "TaskNotFound",
    "TaskStore",
    "VersionConflict",
    "get_task_store",
    "register",
    "set_external_link",
    "task_errors",
]

# One store per Services object (Services is not hashable: keyed by id, dropped when it is collected).
_stores: dict[int, TaskStore] = {}


def get_task_store(services: Services) -> TaskStore:
    """The task store of this app: Redis when the backend is Redis (``MCPS_REDIS_URL``), else memory."""
    key = id(services)
    store = _stores.get(key)
    if store is None:
        redis = services.backend.redis
        store = RedisTaskStore(redis) if redis is not None else MemoryTaskStore()
        _stores[key] = store
        weakref.finalize(services, _stores.pop, key, None)
    return store


def register(server: MCPServer[Any], services: Services) -> None:
    pack = Pack("tasks", server, services)
    store = get_task_store(services)
    tools.register(pack, store)
    resources.register(pack, store)
