"""A task as the stores keep it, and its two wire shapes (SEP-2663): the flat ``CreateTaskResult`` and
the ``DetailedTask`` that ``tasks/get`` answers, result or error inlined.

Times are wall-clock milliseconds (every replica must agree on them: they are compared with the lease
and shown to clients); the stores keep plain JSON-able fields so Redis and memory hold the same thing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["working", "input_required", "completed", "failed", "cancelled"]
STATUSES: frozenset[str] = frozenset({"working", "input_required", "completed", "failed", "cancelled"})
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
EXTENSION_ID = "io.modelcontextprotocol/tasks"


def new_task_id() -> str:
    """An unguessable id (256 bits): knowing one task's id tells nothing about another's."""
    return secrets.token_urlsafe(32)


@dataclass(slots=True)
class TaskRecord:
    task_id: str
    owner: str  # the principal id that created it: the only one who may see, feed or cancel it
    tool: str
    arguments: dict[str, Any]
    created_ms: int
    updated_ms: int
    ttl_ms: int
    poll_interval_ms: int
    rerun_safe: bool
    status: Status = "working"
    status_message: str | None = None
    result: dict[str, Any] | None = None  # completed: the tool's result (a CallToolResult dict)
    error: dict[str, Any] | None = None  # failed: a JSON-RPC error {code, message, data}
    input_requests: dict[str, Any] = field(default_factory=dict)  # input_required: still unanswered
    request_state: str | None = None  # the tool's own multi-round-trip state between rounds
    lease_owner: str | None = None  # the replica running it
    lease_until_ms: int = 0
    attempts: int = 0  # runs started (a re-run after a dead replica counts)
    # The creator's scopes and credential kind: the tool runs as its caller (`current_principal()`), on any
    # replica, after the request is gone.
    scopes: tuple[str, ...] = ()
    principal_kind: str = "api_key"
    trace_link: str | None = None  # "<trace id>-<span id>" (hex) of the creating call's span, for a link

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _envelope(record: TaskRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "taskId": record.task_id,
        "status": record.status,
        "createdAt": iso(record.created_ms),
        "lastUpdatedAt": iso(record.updated_ms),
        "ttlMs": record.ttl_ms,
        "pollIntervalMs": record.poll_interval_ms,
    }
    if record.status_message:
        body["statusMessage"] = record.status_message
    return body


def create_result(record: TaskRecord) -> dict[str, Any]:
    """The flat ``CreateTaskResult`` a task-creating ``tools/call`` answers (no result, error or input yet)."""
    return {"resultType": "task", **_envelope(record)}


def detailed(record: TaskRecord) -> dict[str, Any]:
    """What ``tasks/get`` answers: the envelope plus whatever the status carries."""
    body = {"resultType": "complete", **_envelope(record)}
    if record.status == "completed" and record.result is not None:
        body["result"] = record.result
    elif record.status == "failed" and record.error is not None:
        body["error"] = record.error
    elif record.status == "input_required":
        body["inputRequests"] = record.input_requests
    return body


def notification_params(record: TaskRecord) -> dict[str, Any]:
    """A ``notifications/tasks`` body: the task as ``tasks/get`` answers it, without the result's tag."""
    body = detailed(record)
    del body["resultType"]
    return body
