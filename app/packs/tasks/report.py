"""The report `export_tasks` builds: a pack's long-running tool (it may run as an MCP task, SEP-2663)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from app.packs.tasks.models import Task

EXPORT_MAX_TASKS = 10_000  # one report's bound: the rest are counted as truncated, not read


class TaskReport(BaseModel):
    total: int = Field(description="Tasks in the report.")
    truncated: bool = Field(description=f"True when the caller has more than {EXPORT_MAX_TASKS} tasks.")
    by_status: dict[str, int]
    by_priority: dict[str, int]
    overdue: list[str] = Field(description="Ids of open tasks whose due date has passed.")
    csv: str = Field(description="id,status,priority,due,title: one line per task, oldest first.")


def task_report(tasks: list[Task], *, truncated: bool, today: datetime | None = None) -> TaskReport:
    day = (today or datetime.now(UTC)).date()
    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerow(["id", "status", "priority", "due", "title"])
    for task in tasks:
        writer.writerow([task.id, task.status, task.priority, task.due.isoformat() if task.due else "", task.title])
    return TaskReport(
        total=len(tasks),
        truncated=truncated,
        by_status=dict(Counter(task.status for task in tasks)),
        by_priority={str(p): n for p, n in sorted(Counter(task.priority for task in tasks).items())},
        overdue=[task.id for task in tasks if task.status == "open" and task.due is not None and task.due < day],
        csv=lines.getvalue(),
    )
