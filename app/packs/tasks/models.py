"""The task data model, argument types with their bounds, and the pure change logic both stores share.

A task belongs to one principal (its ``owner``). Every change bumps ``version`` by one and is recorded
as a `TaskEvent` whose ``version`` is the task's version after the change, so a task's history is
numbered 1 (created), 2, 3, ... with no holes. Ordering key of a listing: ``created_at`` then ``id``,
encoded as one sortable string (`order_key`), the same in memory and in Redis.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# --- identifiers and bounded argument types ---------------------------------------------------------

TASK_ID_PATTERN = r"^t_[a-z2-7]{16}$"
_TASK_ID = re.compile(TASK_ID_PATTERN)
# Principal ids an admin may name (API-key principals and typical JWT subjects).
OWNER_PATTERN = r"^[A-Za-z0-9._@:|+-]{1,128}$"

MAX_TAGS = 20
MAX_LINKS = 20

TaskId = Annotated[
    str,
    Field(pattern=TASK_ID_PATTERN, description="A task id as returned by create_task, e.g. t_abcdefgh23456789."),
]
Owner = Annotated[str, Field(pattern=OWNER_PATTERN, description="Admins only: the principal whose tasks to read.")]
# Titles are one line; descriptions may hold newlines and tabs. No other control characters.
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")
]
Priority = Annotated[int, Field(ge=1, le=5)]
Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$"),
]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
DueDate = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]
Status = Literal["open", "done"]
LinkName = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[a-z0-9_.-]+$")]
LinkUrl = Annotated[str, StringConstraints(min_length=8, max_length=2000, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")]
Links = Annotated[dict[LinkName, LinkUrl], Field(max_length=MAX_LINKS)]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def new_task_id() -> str:
    """``t_`` + 16 base32 characters (80 random bits)."""
    return "t_" + base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def derived_task_id(owner: str, idempotency_key: str, draft: TaskDraft) -> str:
    """The id a create with an idempotency key gets: the same for the same owner, key and draft, so a
    create run again (its first outcome unknown) finds the task it may have made; another draft under
    a reused key gets another id. Same shape as `new_task_id` (80 bits)."""
    material = "\x00".join((owner, idempotency_key, draft.model_dump_json())).encode()
    return "t_" + base64.b32encode(hashlib.sha256(material).digest()[:10]).decode("ascii").lower()


def is_task_id(value: str) -> bool:
    return _TASK_ID.fullmatch(value) is not None


def to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def utc_now() -> datetime:
    """Now, truncated to whole microseconds (what survives a JSON round trip exactly)."""
    return from_micros(to_micros(datetime.now(UTC)))


def order_key(created_at: datetime, task_id: str) -> str:
    """The sortable listing key: ``created_at`` in microseconds (17 digits, zero padded), ``:``, the id."""
    return f"{to_micros(created_at):017d}:{task_id}"


ORDER_KEY_PATTERN = re.compile(r"^\d{17}:t_[a-z2-7]{16}$")


def unique_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


# --- stored and returned models ------------------------------------------------------------------


class Task(BaseModel):
    """One task, as stored and as returned by the tools."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(description="The task id (t_ + 16 characters).")
    owner: str = Field(description="The principal the task belongs to.")
    title: str
    description: str = ""
    priority: int = Field(description="1 (most urgent) to 5 (least urgent).")
    tags: list[str] = Field(default_factory=list)
    due: date | None = Field(default=None, description="Due date (YYYY-MM-DD), if any.")
    status: Status = "open"
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None = None
    version: int = Field(description="Incremented on every change; pass it as expected_version to update_task.")
    external_links: dict[str, str] = Field(
        default_factory=dict, description="Links recorded by other tools, e.g. github_issue -> issue URL."
    )

    @property
    def order_key(self) -> str:
        return order_key(self.created_at, self.id)


class FieldChange(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: Any = Field(default=None, alias="from", description="The value before the change (null if unset).")
    to: Any = Field(default=None, description="The value after the change (null if cleared).")


EventAction = Literal["created", "updated", "completed", "reopened", "deleted"]


class TaskEvent(BaseModel):
    """One entry of a task's append-only history."""

    version: int = Field(description="The task's version after this change (1 = created).")
    action: EventAction
    actor: str = Field(description="The principal id that made the change.")
    at: datetime
    changes: dict[str, FieldChange] = Field(default_factory=dict, description="field -> {from, to}.")


class TaskPage(BaseModel):
    tasks: list[Task]
    next_cursor: str | None = Field(
        description="Pass as cursor to get the next page; null when the listing is complete. A page may hold "
        "fewer than limit tasks (filters) while next_cursor is still set: keep going until it is null."
    )


class TaskHistory(BaseModel):
    task_id: str
    events: list[TaskEvent] = Field(description="Oldest first.")
    next_after_version: int | None = Field(
        description="Pass as after_version to get the next events; null when there are no more."
    )


class DeleteTaskResult(BaseModel):
    task_id: str
    deleted: bool
    message: str


# --- changes ----------------------------------------------------------------------------------------


class TaskDraft(BaseModel):
    """What create_task stores (validated with the same bounds as the tool's arguments)."""

    title: Title
    description: Description = ""
    priority: Priority = 3
    tags: Tags = Field(default_factory=list)
    due: DueDate | None = None
    external_links: Links = Field(default_factory=dict)


class TaskChanges(BaseModel):
    """A partial update: ``None`` leaves a field as it is. ``clear_due`` removes the due date.

    ``external_links`` replaces the whole mapping (use `app.packs.tasks.set_external_link` to add one).
    """

    title: Title | None = None
    description: Description | None = None
    priority: Priority | None = None
    tags: Tags | None = None
    due: DueDate | None = None
    clear_due: bool = False
    status: Status | None = None
    external_links: Links | None = None


_CHANGEABLE = ("title", "description", "priority", "tags", "due", "status", "external_links")


def _wire(value: Any) -> Any:
    """A value as JSON would show it (dates as ISO strings), for history events."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _change(before: Any, after: Any) -> FieldChange:
    return FieldChange.model_validate({"from": before, "to": after})


def new_task(
    owner: str, draft: TaskDraft, *, actor: str, now: datetime, task_id: str | None = None
) -> tuple[Task, TaskEvent]:
    task = Task(
        id=task_id or new_task_id(),
        owner=owner,
        title=draft.title,
        description=draft.description,
        priority=draft.priority,
        tags=unique_tags(draft.tags),
        due=draft.due,
        status="open",
        created_at=now,
        updated_at=now,
        version=1,
        external_links=dict(draft.external_links),
    )
    changes = {
        name: _change(None, _wire(getattr(task, name)))
        for name in ("title", "description", "priority", "tags", "due", "status", "external_links")
        if getattr(task, name) not in (None, "", [], {})
    }
    return task, TaskEvent(version=1, action="created", actor=actor, at=now, changes=changes)


def apply_changes(task: Task, changes: TaskChanges, *, actor: str, now: datetime) -> tuple[Task, TaskEvent] | None:
    """The task after ``changes`` and the event recording them; None when nothing would change."""
    wanted: dict[str, Any] = {}
    for name in _CHANGEABLE:
        value = getattr(changes, name)
        if value is not None:
            wanted[name] = unique_tags(value) if name == "tags" else value
    if changes.clear_due:
        wanted["due"] = None
    diff: dict[str, FieldChange] = {}
    for name, value in wanted.items():
        before = getattr(task, name)
        if before != value:
            diff[name] = _change(_wire(before), _wire(value))
    if not diff:
        return None
    update: dict[str, Any] = {name: wanted[name] for name in diff}
    action: EventAction = "updated"
    if "status" in diff:
        if wanted["status"] == "done":
            action = "completed"
            update["completed_at"] = now
            diff["completed_at"] = _change(_wire(task.completed_at), _wire(now))
        else:
            action = "reopened"
            update["completed_at"] = None
            diff["completed_at"] = _change(_wire(task.completed_at), None)
    version = task.version + 1
    updated = task.model_copy(update={**update, "version": version, "updated_at": now})
    return updated, TaskEvent(version=version, action=action, actor=actor, at=now, changes=diff)


def deletion_event(task: Task, *, actor: str, now: datetime) -> TaskEvent:
    return TaskEvent(version=task.version + 1, action="deleted", actor=actor, at=now)
