"""``suggest_subtasks``: one of the caller's tasks broken into subtasks by the *client's* model (sampling).

The service has no model of its own; it asks the client's, in whichever way the connection allows:

- 2026-07-28: the first call answers `InputRequiredResult` carrying a sampling request; the client
  runs its model and calls again with the answer. ``requestState`` (sealed by the SDK with the
  service's request-state keys, so any replica can finish the round) binds the answer to this task,
  caller and size, so an answer cannot be replayed onto another task.
- handshake era: a ``sampling/createMessage`` request on the session's back-channel, which exists
  on stdio and in stateful HTTP sessions. It is timed out (``MCPS_TASKS_SAMPLING_TIMEOUT_SECONDS``):
  a client that never answers gets TIMEOUT, never a hang.
- no back-channel (stateless HTTP in the handshake era) or a client that did not declare sampling:
  CAPABILITY_REQUIRED at once, saying what is missing and how to get it.

Nothing is written: the suggestions come back for the caller (or its user) to create with
create_task, so the tool needs only ``tasks:read``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.types import (
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    InputRequiredResult,
    SamplingMessage,
    TextContent,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from app.auth.principal import current_principal
from app.errors import ErrorCode, ServiceError
from app.packs.api import PackContext
from app.packs.tasks.models import Task, TaskId
from app.packs.tasks.settings import TasksSettings
from app.packs.tasks.store import TaskStore, task_errors

READ = ("tasks:read",)
SAMPLE_KEY = "subtasks"
MAX_SUBTASKS = 10
MAX_SUBTASK_CHARS = 200  # a subtask is meant to become a task title (1-200 characters)
# Sampling calls hold a client round trip each: at most this many in flight per process.
MAX_CONCURRENT_SAMPLING = 32
# The tool's own deadline leaves the sampling timeout room to answer first, with the clearer message.
DEADLINE_MARGIN_SECONDS = 5.0

SYSTEM_PROMPT = (
    "You break one task into concrete, independently doable subtasks. Answer with one subtask per line: a short "
    "imperative title of at most 200 characters, no numbering, no bullets, no other text."
)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s*")


class SubtaskSuggestions(BaseModel):
    task_id: str
    title: str = Field(description="The title of the task that was broken down.")
    subtasks: list[str] = Field(description="Suggested subtask titles, in order; nothing was created.")
    model: str | None = Field(default=None, description="The model the client says answered, if it said.")
    message: str = "Suggestions only: nothing was created. Use create_task for the ones to keep."


def _prompt(task: Task, max_subtasks: int) -> str:
    lines = [f"Break this task into at most {max_subtasks} subtasks.", f"Title: {task.title}"]
    if task.description:
        lines.append(f"Description: {task.description}")
    lines.append(f"Priority: {task.priority} (1 most urgent, 5 least)")
    if task.due is not None:
        lines.append(f"Due: {task.due.isoformat()}")
    return "\n".join(lines)


def parse_subtasks(text: str, max_subtasks: int) -> list[str]:
    """One subtask per non-empty line, list markers removed, each cut to a title's length."""
    subtasks: list[str] = []
    for line in text.splitlines():
        title = _BULLET.sub("", line).strip()
        if title:
            subtasks.append(title[:MAX_SUBTASK_CHARS])
        if len(subtasks) == max_subtasks:
            break
    return subtasks


def _answer_text(answer: Any) -> tuple[str, str | None]:
    if not isinstance(answer, CreateMessageResult) or not isinstance(answer.content, TextContent):
        raise ServiceError(
            ErrorCode.VALIDATION_ERROR,
            "the client's sampling answer carried no text; call suggest_subtasks again",
            details={"field": f"inputResponses.{SAMPLE_KEY}"},
        )
    return answer.content.text, answer.model


def capability_required(reason: str, message: str) -> ServiceError:
    return ServiceError(
        ErrorCode.CAPABILITY_REQUIRED,
        message,
        details={"capability": "sampling", "reason": reason},
    )


def no_client_sampling() -> ServiceError:
    return capability_required(
        "client_did_not_declare_sampling",
        "suggest_subtasks uses your client's model (MCP sampling), and this client did not declare the sampling "
        "capability; use a client that supports sampling, or break the task down yourself and call create_task",
    )


def no_back_channel() -> ServiceError:
    return capability_required(
        "no_back_channel",
        "suggest_subtasks uses your client's model (MCP sampling), which this connection cannot carry: in the "
        "handshake era, stateless HTTP (and HTTP answered as plain JSON) has no server-to-client requests. "
        "Connect with protocol version 2026-07-28, or to a server in stateful mode with streamed answers "
        "(MCPS_TRANSPORT_MODE=stateful, MCPS_JSON_RESPONSE=false), or run the local stdio server",
    )


def register(pack: PackContext[TasksSettings], store: TaskStore) -> None:
    timeout = pack.settings.sampling_timeout_seconds
    max_tokens = pack.settings.sampling_max_tokens

    def request(task: Task, max_subtasks: int) -> CreateMessageRequestParams:
        message = SamplingMessage(role="user", content=TextContent(type="text", text=_prompt(task, max_subtasks)))
        return CreateMessageRequestParams(messages=[message], system_prompt=SYSTEM_PROMPT, max_tokens=max_tokens)

    async def over_back_channel(ctx: Context, task: Task, max_subtasks: int) -> tuple[str, str | None]:
        session = ctx.session
        if not session.can_send_request:
            raise no_back_channel()
        caps = session.client_capabilities
        if caps is None or caps.sampling is None:
            raise no_client_sampling()
        params = request(task, max_subtasks)
        try:
            with anyio.fail_after(timeout):
                result = await session.create_message(
                    params.messages,
                    max_tokens=params.max_tokens,
                    system_prompt=params.system_prompt,
                    related_request_id=ctx.request_id,
                )
        except TimeoutError:
            raise ServiceError(
                ErrorCode.TIMEOUT,
                f"the client did not answer the sampling request within {timeout:g} s (its model, or a user "
                "asked to approve the request, took too long)",
                details={"timeout_seconds": timeout, "capability": "sampling"},
            ) from None
        except NoBackChannelError:
            raise no_back_channel() from None
        except MCPError as exc:  # the client answered the request with an error (e.g. its user declined)
            raise ServiceError(
                ErrorCode.UNAVAILABLE,
                f"the client refused or failed the sampling request: {exc.error.message[:200]}",
                retryable=False,
                details={"capability": "sampling", "client_error_code": exc.error.code},
            ) from None
        return _answer_text(result)

    @pack.tool(
        "suggest_subtasks",
        title="Suggest subtasks",
        description=(
            f"Break one of the caller's tasks into up to max_subtasks (1-{MAX_SUBTASKS}, default 5) smaller "
            "subtasks, using the client's own model (MCP sampling; the client may ask its user to approve). "
            "Returns the suggested subtask titles; it creates nothing: call create_task for the ones to keep. "
            "Needs a client that supports sampling; otherwise it fails at once with CAPABILITY_REQUIRED saying "
            "what is missing. NOT_FOUND for an unknown task id."
        ),
        scopes=READ,
        read_only=True,
        timeout_seconds=timeout + DEADLINE_MARGIN_SECONDS,
        max_concurrency=MAX_CONCURRENT_SAMPLING,
    )
    async def suggest_subtasks(
        ctx: Context,
        task_id: TaskId,
        max_subtasks: Annotated[
            int, Field(ge=1, le=MAX_SUBTASKS, description=f"At most this many subtasks, 1-{MAX_SUBTASKS}.")
        ] = 5,
    ) -> SubtaskSuggestions | InputRequiredResult:
        principal = current_principal()
        with task_errors(task_id):
            task = await store.get(principal.id, task_id)  # NOT_FOUND before anyone's model is asked
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            state = json.dumps(
                {"op": "suggest_subtasks", "task_id": task_id, "principal": principal.id, "max": max_subtasks},
                sort_keys=True,
            )
            responses = ctx.input_responses
            if responses is not None and SAMPLE_KEY in responses:
                # The request state is sealed by the SDK; this binds the answer to this task, caller and size.
                if ctx.request_state != state:
                    raise ServiceError(
                        ErrorCode.VALIDATION_ERROR,
                        "this sampling answer was given for another request; call suggest_subtasks again",
                        details={"field": "requestState"},
                    )
                text, model = _answer_text(responses[SAMPLE_KEY])
            else:
                caps = ctx.client_capabilities
                if caps is None or caps.sampling is None:
                    raise no_client_sampling()
                sample = CreateMessageRequest(params=request(task, max_subtasks))
                return InputRequiredResult(input_requests={SAMPLE_KEY: sample}, request_state=state)
        else:
            text, model = await over_back_channel(ctx, task, max_subtasks)
        return SubtaskSuggestions(
            task_id=task.id, title=task.title, subtasks=parse_subtasks(text, max_subtasks), model=model
        )
