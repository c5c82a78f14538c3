"""The task tools: create, read, list, update, complete, delete, history. Scopes ``tasks:read`` / ``tasks:write``.

Tenancy: every call works on the caller's own tasks (``current_principal().id``). Admins may read
(never write) another principal's tasks by passing ``owner``. Another tenant's task id is NOT_FOUND,
exactly like an id that never existed.

Reads are cached per caller (tag ``tasks:{principal}``) and every write drops that tag. An admin's
cached read of another owner's tasks is not dropped by that owner's writes: it ages out with the TTL.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import AfterValidator, BaseModel, Field

from app.auth.principal import current_principal
from app.errors import ErrorCode, ServiceError
from app.packs.api import PackContext, current_idempotency_key
from app.packs.tasks.cursor import MAX_CURSOR_CHARS, CursorCodec, InvalidCursor
from app.packs.tasks.models import (
    DeleteTaskResult,
    Description,
    DueDate,
    Owner,
    Priority,
    Status,
    Tag,
    Tags,
    Task,
    TaskChanges,
    TaskDraft,
    TaskHistory,
    TaskId,
    TaskPage,
    derived_task_id,
)
from app.packs.tasks.models import Title as TitleType
from app.packs.tasks.report import EXPORT_MAX_TASKS, TaskReport, task_report
from app.packs.tasks.settings import TasksSettings
from app.packs.tasks.store import TaskFilter, TaskStore, task_errors

logger = logging.getLogger(__name__)

READ = ("tasks:read",)
WRITE = ("tasks:write",)
TENANT_TAG = ("tasks:{principal}",)
CACHE_TTL_SECONDS = 30.0
DEFAULT_PAGE = 20
MAX_PAGE = 100
CONFIRM_KEY = "confirm_delete"
CONFIRM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "confirm": {"type": "boolean", "title": "Delete", "description": "Yes, delete this task permanently."}
    },
    "required": ["confirm"],
}


def _clamp_page(value: int) -> int:
    return max(1, min(MAX_PAGE, value))


PageSize = Annotated[
    int,
    Field(description=f"Tasks per page, 1-{MAX_PAGE} (values outside are clamped); default {DEFAULT_PAGE}."),
    AfterValidator(_clamp_page),
]
Cursor = Annotated[
    str,
    Field(min_length=1, max_length=MAX_CURSOR_CHARS, description="next_cursor from the previous page, unchanged."),
]
Version = Annotated[int, Field(ge=1, le=2**53, description="The version you last read (the task's version field).")]


class ConfirmDelete(BaseModel):
    confirm: bool = Field(description="Yes, delete this task permanently.")


def resolve_owner(requested: str | None) -> str:
    """The tenant to read: the caller's own, or (admins only) the one named."""
    principal = current_principal()
    if requested is None or requested == principal.id:
        return principal.id
    if not principal.is_admin:
        raise ServiceError(
            ErrorCode.PERMISSION_DENIED,
            "only an admin may read another principal's tasks; omit owner to use your own",
            details={"field": "owner", "missing_scopes": ["admin"]},
        )
    return requested


async def publish_updated(ctx: Context, task_id: str) -> None:
    """Tell ``subscriptions/listen`` streams that ``task://{id}`` changed. Never fails the write."""
    try:
        await ctx.notify_resource_updated(f"task://{task_id}")
    except Exception:
        logger.warning("resource-updated event for a task could not be published", exc_info=True)


def _accepted(answer: Any) -> bool:
    if not isinstance(answer, ElicitResult) or answer.action != "accept" or answer.content is None:
        return False
    return answer.content.get("confirm") is True


def register(pack: PackContext[TasksSettings], store: TaskStore) -> None:
    service = pack.service
    max_tasks = pack.settings.max_per_principal
    codecs: list[CursorCodec] = []

    async def cursor_codec() -> CursorCodec:
        if not codecs:
            codecs.append(CursorCodec(list(service.request_state_keys) or [await store.shared_secret()]))
        return codecs[0]

    def can_elicit(ctx: Context) -> bool:
        caps = ctx.client_capabilities
        elicitation = caps.elicitation if caps is not None else None
        if elicitation is None or (elicitation.form is None and elicitation.url is not None):
            return False  # no form elicitation declared
        # 2026-07-28: an InputRequiredResult round trip. Handshake era: only a stateful session has the
        # back channel a mid-call elicitation/create request needs.
        return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS or not service.stateless

    @pack.tool(
        "create_task",
        title="Create task",
        description=(
            "Create a new task for the caller. Inputs: title (1-200 characters, one line), optional description "
            "(up to 2000), priority 1 (most urgent) to 5 (least; default 3), up to 20 tags (letters, digits, "
            "_ . -; stored lower-case), optional due date (YYYY-MM-DD), and an optional idempotency_key: reuse it "
            "when retrying after a timeout so the task is created only once. Returns the stored task with its id "
            "and version 1. Do not use it to change an existing task (use update_task) or to mark one done "
            "(use complete_task). Fails with CONFLICT when the caller already holds the maximum number of tasks."
        ),
        scopes=WRITE,
        idempotent_write=True,
        invalidates=TENANT_TAG,
    )
    async def create_task(
        ctx: Context,
        title: Annotated[TitleType, Field(description="Short summary, 1-200 characters, one line.")],
        description: Annotated[Description, Field(description="Details, up to 2000 characters.")] = "",
        priority: Annotated[Priority, Field(description="1 (most urgent) to 5 (least urgent).")] = 3,
        tags: Annotated[Tags | None, Field(description="Up to 20 labels, each 1-50 of a-z 0-9 _ . -")] = None,
        due: Annotated[DueDate | None, Field(description="Due date, YYYY-MM-DD.")] = None,
    ) -> Task:
        principal = current_principal()
        draft = TaskDraft(title=title, description=description, priority=priority, tags=tags or [], due=due)
        key = current_idempotency_key()
        # With a key, the id derives from it: a retry that runs again after an unknown outcome finds the task.
        task_id = derived_task_id(principal.id, key, draft) if key is not None else None
        with task_errors():
            task = await store.create(principal.id, draft, actor=principal.id, max_tasks=max_tasks, task_id=task_id)
        await publish_updated(ctx, task.id)
        return task

    @pack.tool(
        "get_task",
        title="Get task",
        description=(
            "Fetch one task by id: title, description, priority, tags, due date, status (open|done), timestamps, "
            "version and external links. Use it before update_task to learn the current version. Returns "
            "NOT_FOUND for an unknown id (or one that is not yours). To find tasks by status, priority or tag "
            "use list_tasks instead; for what changed over time use task_history."
        ),
        scopes=READ,
        read_only=True,
        cache_ttl_seconds=CACHE_TTL_SECONDS,
        cache_tags=TENANT_TAG,
    )
    async def get_task(task_id: TaskId, owner: Owner | None = None) -> Task:
        tenant = resolve_owner(owner)
        with task_errors(task_id):
            return await store.get(tenant, task_id)

    @pack.tool(
        "list_tasks",
        title="List tasks",
        description=(
            "List the caller's tasks, oldest first (by creation time, then id), optionally filtered by status "
            "(open|done), exact priority (1-5) and one tag. Returns a page of tasks and next_cursor; pass "
            "next_cursor back unchanged, with the same filters, to get the next page, until it is null (a page "
            "can be short or even empty while next_cursor is set). limit is 1-100 (default 20). Do not use it to "
            "fetch one task whose id you know (use get_task). A cursor from another listing is a VALIDATION_ERROR."
        ),
        scopes=READ,
        read_only=True,
        cache_ttl_seconds=CACHE_TTL_SECONDS,
        cache_tags=TENANT_TAG,
    )
    async def list_tasks(
        status: Annotated[Status | None, Field(description="Only open or only done tasks.")] = None,
        priority: Annotated[Priority | None, Field(description="Only tasks with exactly this priority.")] = None,
        tag: Annotated[Tag | None, Field(description="Only tasks carrying this tag.")] = None,
        limit: PageSize = DEFAULT_PAGE,
        cursor: Cursor | None = None,
        owner: Owner | None = None,
    ) -> TaskPage:
        tenant = resolve_owner(owner)
        binding = [current_principal().id, tenant, status, priority, tag]
        with task_errors():
            codec = await cursor_codec()
            after = None
            if cursor is not None:
                try:
                    after = codec.decode(cursor, binding)
                except InvalidCursor:
                    raise ServiceError(
                        ErrorCode.VALIDATION_ERROR,
                        "cursor is not valid for this listing: pass next_cursor back unchanged with the same "
                        "filters and owner, or omit cursor to start from the beginning",
                        details={"field": "cursor"},
                    ) from None
            page = await store.list_page(
                tenant, after=after, limit=limit, where=TaskFilter(status=status, priority=priority, tag=tag)
            )
        next_cursor = codec.encode(page.next_after, binding) if page.next_after is not None else None
        return TaskPage(tasks=page.tasks, next_cursor=next_cursor)

    @pack.tool(
        "export_tasks",
        title="Export tasks as a report",
        description=(
            "Build a report of all the caller's tasks: counts by status and priority, overdue open tasks, and "
            "every task as a CSV line (id, status, priority, due, title). It can take a while for many tasks: "
            "a client that supports the tasks extension gets a task to poll; others wait for the result. Do "
            "not use it to look at a few tasks (list_tasks, get_task)."
        ),
        scopes=READ,
        read_only=True,
        task_support="optional",
        rerun_safe=True,  # it only reads: running it again elsewhere is harmless
        timeout_seconds=300,
    )
    async def export_tasks(owner: Owner | None = None) -> TaskReport:
        tenant = resolve_owner(owner)
        tasks: list[Task] = []
        after: str | None = None
        with task_errors():
            while len(tasks) < EXPORT_MAX_TASKS:
                page = await store.list_page(tenant, after=after, limit=MAX_PAGE, where=TaskFilter())
                tasks.extend(page.tasks)
                if page.next_after is None:
                    break
                after = page.next_after
        return task_report(tasks[:EXPORT_MAX_TASKS], truncated=len(tasks) > EXPORT_MAX_TASKS)

    @pack.tool(
        "update_task",
        title="Update task",
        description=(
            "Change some fields of one of the caller's tasks: title, description, priority, tags (replaces the "
            "whole list) and due date (or clear_due: true to remove it); fields you omit stay as they are. "
            "expected_version is required: the version you last read. If the task changed since, it fails with "
            "CONFLICT and details.current_version: re-read it and decide again. Returns the updated task (its "
            "version is one higher; unchanged if nothing differed). Do not use it to mark a task done "
            "(complete_task) or to delete one (delete_task)."
        ),
        scopes=WRITE,
        idempotent=True,
        invalidates=TENANT_TAG,
    )
    async def update_task(
        ctx: Context,
        task_id: TaskId,
        expected_version: Version,
        title: Annotated[TitleType | None, Field(description="New title, 1-200 characters.")] = None,
        description: Annotated[Description | None, Field(description="New description, up to 2000.")] = None,
        priority: Annotated[Priority | None, Field(description="New priority, 1 (most urgent) to 5.")] = None,
        tags: Annotated[Tags | None, Field(description="The new complete tag list ([] removes all).")] = None,
        due: Annotated[DueDate | None, Field(description="New due date, YYYY-MM-DD.")] = None,
        clear_due: Annotated[bool, Field(description="true removes the due date.")] = False,
    ) -> Task:
        if due is not None and clear_due:
            raise ServiceError(
                ErrorCode.VALIDATION_ERROR, "give either due or clear_due, not both", details={"field": "clear_due"}
            )
        if all(value is None for value in (title, description, priority, tags, due)) and not clear_due:
            raise ServiceError(
                ErrorCode.VALIDATION_ERROR,
                "nothing to change: give at least one of title, description, priority, tags, due, clear_due",
                details={"field": "(arguments)"},
            )
        principal = current_principal()
        changes = TaskChanges(
            title=title, description=description, priority=priority, tags=tags, due=due, clear_due=clear_due
        )
        with task_errors(task_id):
            task = await store.update(
                principal.id, task_id, changes, actor=principal.id, expected_version=expected_version
            )
        if task.version != expected_version:
            await publish_updated(ctx, task_id)
        return task

    @pack.tool(
        "complete_task",
        title="Complete task",
        description=(
            "Mark one of the caller's tasks as done (status done, completed_at set). Safe to repeat: completing a "
            "task that is already done changes nothing and returns it as is. Optional expected_version makes it "
            "fail with CONFLICT if the task changed since you read it. Returns the task. Do not use it to edit "
            "other fields (update_task) or to remove the task (delete_task)."
        ),
        scopes=WRITE,
        idempotent=True,
        invalidates=TENANT_TAG,
    )
    async def complete_task(ctx: Context, task_id: TaskId, expected_version: Version | None = None) -> Task:
        principal = current_principal()
        with task_errors(task_id):
            task = await store.update(
                principal.id,
                task_id,
                TaskChanges(status="done"),
                actor=principal.id,
                expected_version=expected_version,
            )
        await publish_updated(ctx, task_id)
        return task

    @pack.tool(
        "delete_task",
        title="Delete task",
        description=(
            "Permanently delete one of the caller's tasks (its history is kept for 30 days). The user must "
            "confirm: a client that can ask its user is asked (elicitation); otherwise pass confirm: true, and "
            "only after the user agreed in the conversation. Returns whether it was deleted. Do not use it to "
            "close finished work: use complete_task, which keeps the task."
        ),
        scopes=WRITE,
        destructive=True,
        idempotent=True,
        invalidates=TENANT_TAG,
        notifies=not service.stateless,  # asks its user mid-call (elicitation) only in a stateful session
    )
    async def delete_task(
        ctx: Context,
        task_id: TaskId,
        confirm: Annotated[
            bool, Field(description="true once the user agreed; needed only when the client cannot ask them.")
        ] = False,
    ) -> DeleteTaskResult | InputRequiredResult:
        principal = current_principal()
        modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        state = json.dumps({"op": "delete_task", "task_id": task_id, "principal": principal.id}, sort_keys=True)

        async def delete() -> DeleteTaskResult:
            with task_errors(task_id):
                await store.delete(principal.id, task_id, actor=principal.id)
            await publish_updated(ctx, task_id)
            return DeleteTaskResult(task_id=task_id, deleted=True, message="The task was deleted.")

        def declined() -> DeleteTaskResult:
            return DeleteTaskResult(
                task_id=task_id, deleted=False, message="The user did not confirm; nothing was deleted."
            )

        responses = ctx.input_responses if modern else None
        if responses is not None and CONFIRM_KEY in responses:
            # The request state is sealed by the SDK; this binds the answer to this task and caller.
            if ctx.request_state != state:
                raise ServiceError(
                    ErrorCode.VALIDATION_ERROR,
                    "this confirmation was given for another deletion; call delete_task again",
                    details={"field": "requestState"},
                )
            return await delete() if _accepted(responses[CONFIRM_KEY]) else declined()

        with task_errors(task_id):
            task = await store.get(principal.id, task_id)  # NOT_FOUND before asking anyone anything
        if can_elicit(ctx):
            question = f"Delete task {task.id} ({json.dumps(task.title[:100])})? This cannot be undone."
            if modern:
                form = ElicitRequestFormParams(message=question, requested_schema=CONFIRM_SCHEMA)
                return InputRequiredResult(
                    input_requests={CONFIRM_KEY: ElicitRequest(params=form)}, request_state=state
                )
            try:
                answer = await ctx.elicit(question, ConfirmDelete)
            except MCPError:
                answer = None
            if answer is not None:
                accepted = answer.action == "accept" and answer.data.confirm
                return await delete() if accepted else declined()
        if not confirm:
            raise ServiceError(
                ErrorCode.VALIDATION_ERROR,
                "deleting a task needs the user's confirmation, and this client cannot ask them: ask the user, "
                "then call delete_task again with confirm: true",
                details={"field": "confirm"},
            )
        return await delete()

    @pack.tool(
        "task_history",
        title="Task history",
        description=(
            "The change log of one of the caller's tasks, oldest first: for each change its version, action "
            "(created, updated, completed, reopened, deleted), who made it (principal id), when, and each "
            "field's old and new value. Works for deleted tasks for 30 days. Paginate with after_version (0 = "
            "from the start) and limit (1-100, default 50); next_after_version is null at the end. For the "
            "current state of a task use get_task."
        ),
        scopes=READ,
        read_only=True,
    )
    async def task_history(
        task_id: TaskId,
        after_version: Annotated[
            int, Field(ge=0, le=2**53, description="Only events after this version; 0 from the start.")
        ] = 0,
        limit: Annotated[int, Field(ge=1, le=100, description="Events per page, 1-100.")] = 50,
        owner: Owner | None = None,
    ) -> TaskHistory:
        tenant = resolve_owner(owner)
        with task_errors(task_id):
            events = await store.history(tenant, task_id, after_version=after_version, limit=limit + 1)
        more = len(events) > limit
        events = events[:limit]
        return TaskHistory(
            task_id=task_id, events=events, next_after_version=events[-1].version if more and events else None
        )
