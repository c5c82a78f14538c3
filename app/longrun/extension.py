"""The ``io.modelcontextprotocol/tasks`` extension (SEP-2663) on the SDK's public extension seam.

`MCPServer(extensions=[...])` advertises it under ``capabilities.extensions``, serves its methods
(``tasks/get``, ``tasks/update``, ``tasks/cancel``; the removed ``tasks/result`` and ``tasks/list``
stay unknown: -32601) and wraps ``tools/call`` (`intercept_tool_call`, below the guard chain: the
call was authenticated, authorized, rate-limited and its arguments checked before a task exists).

Gating: only a 2026-07-28 request whose client declares the extension (for the session, or in this
request's ``_meta``) gets a task; a tool declared ``optional`` then runs synchronously, one declared
``required`` is refused with -32021, and the ``tasks/*`` methods answer -32021.

Isolation: a task belongs to the principal that created it; to anyone else it does not exist (the
same -32602 as an unknown id), and its tool's scopes are checked again on every ``tasks/*`` call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from mcp.types import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    CallToolRequestParams,
    InputRequiredResult,
    RequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from app.auth.principal import CredentialKind, Principal
from app.backends import BackendUnavailable
from app.call import CallContext, bind, current_call, unbind
from app.errors import ErrorCode, ServiceError, internal_error
from app.longrun import spans
from app.longrun.access import declared, missing_capability, missing_scopes, owns
from app.longrun.memory_store import wall_ms
from app.longrun.records import EXTENSION_ID, TaskRecord, create_result, detailed, new_task_id
from app.longrun.runner import InputWanted, Outcome, TaskRunner, failure
from app.middleware.results import as_dict, error_result
from app.policy import Policies, ToolPolicy

logger = logging.getLogger(__name__)

TASK_ID_MAX_CHARS = 200  # ours are 43; longer is not a task id


class TaskParams(RequestParams):
    task_id: str = Field(alias="taskId", min_length=1, max_length=TASK_ID_MAX_CHARS)


class UpdateParams(TaskParams):
    input_responses: dict[str, Any] = Field(alias="inputResponses", max_length=100)


def _kind(value: str) -> CredentialKind:
    return "jwt" if value == "jwt" else "anonymous" if value == "anonymous" else "api_key"


def _dump(model: Any) -> Any:
    dumped = as_dict(model)
    return dumped if dumped is not None else model


def unknown_task(task_id: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message="unknown task (it never existed, expired, or is not yours)")


def unavailable(exc: BackendUnavailable) -> ServiceError:
    return ServiceError(ErrorCode.UNAVAILABLE, "the task store is unreachable; retry shortly", retry_after_ms=1000)


class TasksExtension(Extension):
    identifier = EXTENSION_ID

    def __init__(
        self, runner: TaskRunner, policies: Policies, *, ttl_ms: int, poll_interval_ms: int, max_active: int
    ) -> None:
        self.runner = runner
        self.store = runner.store
        self.policies = policies
        self.ttl_ms = ttl_ms
        self.poll_interval_ms = poll_interval_ms
        self.max_active = max_active
        self._server: MCPServer[Any] | None = None
        self.on_bind: list[Callable[[MCPServer[Any]], None]] = []  # what else needs the built server

    def bind(self, server: MCPServer[Any]) -> None:
        """The server whose tools tasks run (set once the server is built; it is built with this extension)."""
        self._server = server
        for hook in self.on_bind:
            hook(server)

    def methods(self) -> list[MethodBinding]:
        versions = frozenset(MODERN_PROTOCOL_VERSIONS)
        return [
            MethodBinding("tasks/get", TaskParams, self._get, versions),
            MethodBinding("tasks/update", UpdateParams, self._update, versions),
            MethodBinding("tasks/cancel", TaskParams, self._cancel, versions),
        ]

    # --- tools/call -----------------------------------------------------------------------------------------
    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        call = current_call()
        policy = call.policy if call is not None and call.policy is not None else self.policies.tool(params.name)
        if policy.task_support == "never":
            return await call_next(ctx)
        if not declared(ctx):
            if policy.task_support == "required":
                raise missing_capability(f"tool {params.name!r}")
            return await call_next(ctx)
        if policy.task_input_first and not params.input_responses:
            return await call_next(ctx)  # its questions first, synchronously; the answered call becomes a task
        principal = call.principal if call is not None else None
        if principal is None:
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "a task needs an authenticated caller")
        return await self._create(params, principal, policy)

    async def _create(self, params: CallToolRequestParams, principal: Principal, policy: ToolPolicy) -> dict[str, Any]:
        if not self.runner.has_room():
            raise ServiceError(
                ErrorCode.UNAVAILABLE,
                f"this replica is running its maximum of {self.runner.config.max_running} tasks",
                retry_after_ms=self.poll_interval_ms,
            )
        now = wall_ms()
        record = TaskRecord(
            task_id=new_task_id(),
            owner=principal.id,
            tool=params.name,
            arguments=dict(params.arguments or {}),
            created_ms=now,
            updated_ms=now,
            ttl_ms=self.ttl_ms,
            poll_interval_ms=self.poll_interval_ms,
            rerun_safe=policy.rerun_safe,
            request_state=params.request_state,
            lease_owner=self.runner.replica,
            attempts=1,
            scopes=tuple(sorted(principal.scopes)),
            principal_kind=principal.kind,
            trace_link=spans.link_of_current(),
        )
        answers = {key: _dump(value) for key, value in (params.input_responses or {}).items()}
        try:
            created = await self.store.create(
                record, max_active_per_owner=self.max_active, lease_ms=self.runner.config.lease_ms, answers=answers
            )
        except BackendUnavailable as exc:
            raise unavailable(exc) from None
        if not created:
            raise ServiceError(
                ErrorCode.RATE_LIMITED,
                f"you hold {self.max_active} unfinished tasks, the most allowed; wait for one to end or cancel one",
                retry_after_ms=self.poll_interval_ms,
                details={"max_active_tasks": self.max_active},
            )
        self.runner.launch(record)
        self.runner.observer.created(record.tool)
        logger.info("task %s: created for tool %r", record.task_id, record.tool)
        return create_result(record)

    # --- running one round of a task's tool (the runner's invoker) ----------------------------------------
    async def invoke(self, record: TaskRecord, answers: dict[str, Any], state: str | None) -> Outcome | InputWanted:
        """One round of the task's tool, as its caller (a call context of its own: the request is gone)."""
        call = CallContext(request_id=f"task-{record.task_id[:12]}", method="tools/call", tool=record.tool)
        call.era, call.arguments = "modern", record.arguments
        call.principal = Principal(record.owner, frozenset(record.scopes), _kind(record.principal_kind))
        call.policy = self.policies.tool(record.tool)
        token = bind(call)
        try:
            with spans.task_round(record):
                return await self._round(record.tool, record.arguments, answers, state)
        finally:
            unbind(token)

    async def _round(
        self, tool: str, arguments: dict[str, Any], answers: dict[str, Any], state: str | None
    ) -> Outcome | InputWanted:
        server = self._server
        if server is None:
            raise RuntimeError("the tasks extension is not bound to its server")
        params = CallToolRequestParams(
            name=tool, arguments=arguments, input_responses=answers or None, request_state=state
        )
        try:
            result = await server.call_tool(tool, arguments, Context(mcp_server=server, input_params=params))
        except ServiceError as exc:
            if exc.error_code is ErrorCode.INTERNAL_ERROR:
                return failure(exc)
            return Outcome("completed", result=as_dict(error_result(exc)))  # the tool reported an error
        except MCPError as exc:  # a protocol-level failure
            return Outcome("failed", error=exc.error.model_dump(mode="json", exclude_none=True), message=str(exc))
        except UnexpectedToolError:
            logger.exception("task tool %r crashed", tool)
            return failure(internal_error())
        except ToolError as exc:
            body = {"content": [{"type": "text", "text": str(exc)}], "isError": True}
            return Outcome("completed", result=body)
        if isinstance(result, InputRequiredResult):
            requests = {key: _dump(request) for key, request in (result.input_requests or {}).items()}
            return InputWanted(requests, result.request_state)
        return Outcome("completed", result=as_dict(result))

    # --- tasks/* ---------------------------------------------------------------------------------------------
    async def _owned(self, ctx: ServerRequestContext[Any, Any], params: TaskParams, method: str) -> TaskRecord:
        if not declared(ctx):
            raise missing_capability(method)
        request = ctx.request
        named = request.headers.get("mcp-name") if request is not None else None
        if named is not None and named.strip() != params.task_id:
            raise MCPError(code=HEADER_MISMATCH, message="the Mcp-Name header does not match params.taskId")
        call = current_call()
        principal = call.principal if call is not None else None
        try:
            record = await self.store.get(params.task_id)
        except BackendUnavailable as exc:
            raise unavailable(exc) from None
        if record is None or principal is None or not owns(record, principal):
            raise unknown_task(params.task_id)
        missing = missing_scopes(record, principal, self.policies)
        if missing:
            raise ServiceError(
                ErrorCode.PERMISSION_DENIED,
                "this task's tool needs scopes you no longer hold",
                details={"missing": missing},
            )
        return record

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        return detailed(await self._owned(ctx, params, "tasks/get"))

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateParams) -> dict[str, Any]:
        await self._owned(ctx, params, "tasks/update")
        try:
            await self.store.answer(params.task_id, params.input_responses)
        except BackendUnavailable as exc:
            raise unavailable(exc) from None
        return {}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        await self._owned(ctx, params, "tasks/cancel")
        try:
            await self.store.cancel(params.task_id)
        except BackendUnavailable as exc:
            raise unavailable(exc) from None
        self.runner.stop_local(params.task_id)
        return {}
