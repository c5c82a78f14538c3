"""What the service's operators see of tasks: Prometheus metrics and a readiness detail."""

from __future__ import annotations

from app.health import CheckResult
from app.longrun.runner import TaskRunner
from app.metrics import Metrics


class MetricsTaskObserver:
    """A `TaskObserver` feeding the app's metrics (tool names are registered ones: bounded labels)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def created(self, tool: str) -> None:
        self._metrics.tasks_created.labels(tool).inc()

    def ended(self, tool: str, status: str, seconds: float) -> None:
        self._metrics.tasks_ended.labels(tool, status).inc()
        self._metrics.task_run_duration.labels(tool, status).observe(seconds)

    def running(self, count: int) -> None:
        self._metrics.tasks_running.set(count)


def readiness_check(runner: TaskRunner) -> CheckResult:
    """Not required for readiness (a busy replica still serves); says how busy and for how long."""
    oldest = runner.oldest_seconds()
    detail: dict[str, object] = {"running": runner.running, "max_running": runner.config.max_running}
    if oldest is not None:
        detail["oldest_running_seconds"] = round(oldest, 1)
    return CheckResult("healthy" if runner.has_room() or runner.stopping else "degraded", detail)
