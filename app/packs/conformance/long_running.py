"""Task fixtures of the tasks extension's scenarios (SEP-2663, ``tasks-*``): tools that run as tasks.

Run synchronously (a client without the extension), they keep the service's tool timeout like any
tool; as tasks, ``MCPS_LONGRUN_MAX_RUN_SECONDS`` bounds them. ``protocol_error_job`` is task-required
(synchronously it would answer a JSON-RPC internal error, which the service never does on purpose),
and so are the two that ask for input (the handshake-era wire cannot carry their questions).

Each declares its task support the way any pack would (``task_support``, ``rerun_safe``,
``task_input_first``); the service's tasks extension (`app.longrun`) does the rest. A task waiting on
the client asks with an InputRequiredResult, as on the stateless wire: its task shows the requests
(``input_required``), ``tasks/update`` brings the answers, and the tool runs again with them.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    CallToolResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
    TextContent,
)
from pydantic import Field

from app.packs.api import PackContext

CONFIRM_SCHEMA = {"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def _form(message: str, schema: dict[str, Any]) -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _field(answer: Any, name: str) -> Any:
    return answer.content.get(name) if isinstance(answer, ElicitResult) and answer.content else None


def register(pack: PackContext[Any], scopes: tuple[str, ...]) -> None:
    @pack.tool(scopes=scopes, description="Sync-only: greets by name.")
    async def greet(name: Annotated[str, Field(max_length=200)]) -> str:
        return f"Hello, {name}!"

    @pack.tool(
        scopes=scopes,
        description="Task-supporting: sleeps `seconds`, then answers. Safe to re-run.",
        task_support="optional",
        rerun_safe=True,
    )
    async def slow_compute(
        seconds: Annotated[float, Field(ge=0, le=120)] = 1, label: Annotated[str, Field(max_length=200)] = ""
    ) -> str:
        await anyio.sleep(seconds)
        return f"computed {label or 'result'} after {seconds:g}s"

    @pack.tool(
        scopes=scopes,
        description="Task-supporting: sleeps `seconds`, then answers; NOT safe to re-run (a task whose replica "
        "died ends failed rather than running twice).",
        task_support="optional",
    )
    async def slow_once(seconds: Annotated[float, Field(ge=0, le=120)] = 1) -> str:
        await anyio.sleep(seconds)
        return f"ran once for {seconds:g}s"

    @pack.tool(
        scopes=scopes, description="Task-required: reports a tool execution error after about a second.",
        task_support="required",
    )  # fmt: skip
    async def failing_job() -> CallToolResult:
        await anyio.sleep(1)
        return CallToolResult(content=[TextContent(type="text", text="the job failed")], is_error=True)

    @pack.tool(scopes=scopes, description="Task-required: fails at the protocol level.", task_support="required")
    async def protocol_error_job() -> str:
        await anyio.sleep(0.2)
        raise MCPError(code=INTERNAL_ERROR, message="protocol_error_job failed on purpose")

    @pack.tool(
        scopes=scopes,
        description="Task-required: asks the client to confirm, then deletes (nothing real).",
        task_support="required",
        rerun_safe=True,
    )
    async def confirm_delete(
        ctx: Context, filename: Annotated[str, Field(max_length=200)]
    ) -> str | InputRequiredResult:
        answers = ctx.input_responses or {}
        if "confirm" in answers:
            return f"deleted {filename}" if _field(answers["confirm"], "confirm") else f"kept {filename}"
        return InputRequiredResult(input_requests={"confirm": _form(f"Delete {filename}?", CONFIRM_SCHEMA)})

    @pack.tool(
        scopes=scopes,
        description="Task-required: asks two questions at once.",
        task_support="required",
        rerun_safe=True,
    )
    async def multi_input(ctx: Context) -> str | InputRequiredResult:
        answers = ctx.input_responses or {}
        if {"first", "second"} <= answers.keys():
            return f"got {_field(answers['first'], 'name')} and {_field(answers['second'], 'name')}"
        return InputRequiredResult(
            input_requests={"first": _form("First name?", NAME_SCHEMA), "second": _form("Second name?", NAME_SCHEMA)}
        )

    @pack.tool(
        scopes=scopes,
        description="Task-required: asks for a name synchronously, then becomes a task that uses it.",
        task_support="required",
        task_input_first=True,
        rerun_safe=True,
    )
    async def test_tool_with_task(ctx: Context) -> str | InputRequiredResult:
        answers = ctx.input_responses or {}
        if "user_name" not in answers:
            return InputRequiredResult(input_requests={"user_name": _form("What is your name?", NAME_SCHEMA)})
        await anyio.sleep(0.2)
        return f"Hello, {_field(answers['user_name'], 'name') or 'stranger'}!"
