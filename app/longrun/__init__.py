"""Long-running tools as tasks: the ``io.modelcontextprotocol/tasks`` extension (SEP-2663).

Not the *tasks pack* (`app.packs.tasks`, a principal's to-do items): these tasks are tool calls that
outlive their request. `build_tasks_extension` wires the pieces for one app: the store (Redis for a
fleet, memory for one replica), the runner (leases, orphans, drain), the extension the SDK serves, and
the listen handler that carries ``notifications/tasks`` (status changes announced on the backend's bus).
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

from app.backends.subscriptions import RedisSubscriptionBus
from app.health import CheckResult
from app.longrun.events import LocalTaskEvents, TaskEvents
from app.longrun.extension import TasksExtension
from app.longrun.listen import TaskListenHandler
from app.longrun.memory_store import MemoryTaskStore
from app.longrun.notifying_store import NotifyingTaskStore
from app.longrun.observe import MetricsTaskObserver, readiness_check
from app.longrun.redis_store import RedisTaskStore
from app.longrun.runner import RunnerConfig, TaskRunner
from app.longrun.store import TaskStore
from app.sdk_gaps import wrap_request_handler
from app.services import Services

__all__ = ["TasksExtension", "build_tasks_extension"]

logger = logging.getLogger(__name__)


def build_tasks_extension(services: Services) -> TasksExtension | None:
    """The extension for this app, its runner started and drained by the app's lifespan; None when off."""
    settings = services.settings
    if not settings.longrun_enabled:
        return None
    redis = services.backend.redis
    bus = services.subscriptions
    events: TaskEvents = bus if isinstance(bus, RedisSubscriptionBus) else LocalTaskEvents()
    kept: TaskStore = RedisTaskStore(redis) if redis is not None else MemoryTaskStore()
    store = NotifyingTaskStore(kept, events)  # every status change reaches the listen streams following it
    if redis is None and settings.workers > 1:
        logger.warning(
            "tasks live in each worker's memory (no MCPS_REDIS_URL): a tasks/get that reaches another worker "
            "answers 'unknown task'. Set MCPS_REDIS_URL to share them."
        )
    config = RunnerConfig(
        lease_seconds=settings.longrun_lease_seconds,
        check_seconds=settings.longrun_check_seconds,
        max_run_seconds=settings.longrun_max_run_seconds,
        max_running=settings.longrun_max_running,
        max_result_bytes=settings.longrun_max_result_bytes,
    )
    runner = TaskRunner(store, config, observer=MetricsTaskObserver(services.metrics))
    extension = TasksExtension(
        runner,
        services.policies,
        ttl_ms=settings.longrun_ttl_seconds * 1000,
        poll_interval_ms=settings.longrun_poll_interval_ms,
        max_active=settings.longrun_max_active_per_principal,
    )
    runner.bind(extension.invoke)

    def serve_task_notifications(server: MCPServer[Any]) -> None:
        wrap_request_handler(
            server,
            "subscriptions/listen",
            lambda inner: TaskListenHandler(inner, bus, events, store, services.policies),
        )

    extension.on_bind.append(serve_task_notifications)
    services.lifecycle.on_stop(lambda: setattr(runner, "stopping", True))

    async def run_tasks(stack: AsyncExitStack) -> None:
        group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(group.cancel_scope.cancel)  # last: stops the sweeper
        stack.push_async_callback(runner.drain, settings.longrun_drain_seconds)  # first: running tasks end
        await group.start(runner.run)

    services.on_startup(run_tasks)

    async def tasks_check() -> CheckResult:
        return readiness_check(runner)

    services.health.add("tasks", tasks_check, required=False)
    return extension
