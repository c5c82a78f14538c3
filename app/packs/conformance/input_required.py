"""2026-07-28 multi-round-trip fixtures: tools and a prompt answering with InputRequiredResult.

On the stateless wire a server cannot send a request mid-call; it returns the questions, the client
retries with the answers, and ``requestState`` (sealed by the SDK's request-state boundary with
the keys from settings) carries the server's progress between rounds, on any replica.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.types import (
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequest,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    SamplingMessage,
    TextContent,
)

from app.packs.api import PackContext

NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
CONFIRM_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
COLOR_SCHEMA = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
CONTEXT_SCHEMA = {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}


def _form(message: str, schema: dict[str, Any]) -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _sample(text: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=text))
    return CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))


def _elicited(answer: Any, field: str) -> Any:
    if isinstance(answer, ElicitResult) and answer.content:
        return answer.content.get(field)
    return None


def register(pack: PackContext[Any], scopes: tuple[str, ...]) -> None:
    @pack.tool(scopes=scopes, description="Needs user input; on the stateless wire it must use InputRequiredResult.")
    async def test_streaming_elicitation(ctx: Context) -> str | InputRequiredResult:
        if ctx.input_responses and "user_name" in ctx.input_responses:
            return "streaming elicitation done"
        return InputRequiredResult(input_requests={"user_name": _form("What is your name?", NAME_SCHEMA)})

    @pack.tool(scopes=scopes, description="Tests InputRequiredResult with a single elicitation request")
    async def test_input_required_result_elicitation(ctx: Context) -> str | InputRequiredResult:
        if ctx.input_responses and "user_name" in ctx.input_responses:
            name = _elicited(ctx.input_responses["user_name"], "name") or "stranger"
            return f"Hello, {name}!"
        return InputRequiredResult(input_requests={"user_name": _form("What is your name?", NAME_SCHEMA)})

    @pack.tool(scopes=scopes, description="Tests InputRequiredResult with a single sampling request")
    async def test_input_required_result_sampling(ctx: Context) -> str | InputRequiredResult:
        if ctx.input_responses and "capital_question" in ctx.input_responses:
            answer = ctx.input_responses["capital_question"]
            ok = isinstance(answer, CreateMessageResult) and isinstance(answer.content, TextContent)
            return f"Model said: {answer.content.text if ok else '?'}"  # type: ignore[union-attr]
        return InputRequiredResult(input_requests={"capital_question": _sample("What is the capital of France?", 100)})

    @pack.tool(scopes=scopes, description="Tests InputRequiredResult with a single roots/list request")
    async def test_input_required_result_list_roots(ctx: Context) -> str | InputRequiredResult:
        if ctx.input_responses and "client_roots" in ctx.input_responses:
            answer = ctx.input_responses["client_roots"]
            count = len(answer.roots) if isinstance(answer, ListRootsResult) else 0
            return f"Client exposed {count} root(s)."
        return InputRequiredResult(input_requests={"client_roots": ListRootsRequest()})

    @pack.tool(scopes=scopes, description="Tests requestState round-tripping in the InputRequiredResult flow")
    async def test_input_required_result_request_state(ctx: Context) -> str | InputRequiredResult:
        if ctx.input_responses and "confirm" in ctx.input_responses and ctx.request_state == "request-state-nonce":
            return "state-ok: confirmation received"
        return InputRequiredResult(
            input_requests={"confirm": _form("Please confirm", CONFIRM_SCHEMA)}, request_state="request-state-nonce"
        )

    @pack.tool(
        scopes=scopes,
        description="Tests InputRequiredResult carrying elicitation, sampling and roots requests together",
    )
    async def test_input_required_result_multiple_inputs(ctx: Context) -> str | InputRequiredResult:
        if ctx.input_responses and {"user_name", "greeting", "client_roots"} <= ctx.input_responses.keys():
            return "All inputs received."
        return InputRequiredResult(
            input_requests={
                "user_name": _form("What is your name?", NAME_SCHEMA),
                "greeting": _sample("Generate a greeting", 50),
                "client_roots": ListRootsRequest(),
            },
            request_state="multiple-inputs",
        )

    @pack.tool(scopes=scopes, description="Tests a three-round InputRequiredResult flow with evolving requestState")
    async def test_input_required_result_multi_round(ctx: Context) -> str | InputRequiredResult:
        state = json.loads(ctx.request_state) if ctx.request_state else {"round": 0}
        responses = ctx.input_responses or {}
        if state.get("round") == 1 and "step1" in responses:
            name = _elicited(responses["step1"], "name")
            return InputRequiredResult(
                input_requests={"step2": _form("Step 2: What is your favorite color?", COLOR_SCHEMA)},
                request_state=json.dumps({"round": 2, "name": name}),
            )
        if state.get("round") == 2 and "step2" in responses:
            return f"{state.get('name')} likes {_elicited(responses['step2'], 'color')}."
        return InputRequiredResult(
            input_requests={"step1": _form("Step 1: What is your name?", NAME_SCHEMA)},
            request_state=json.dumps({"round": 1}),
        )

    @pack.tool(
        scopes=scopes, description="Tests that a tampered requestState echo is rejected (the SDK boundary checks it)."
    )
    async def test_input_required_result_tampered_state(ctx: Context) -> str | InputRequiredResult:
        if ctx.request_state is None:
            return InputRequiredResult(
                input_requests={"confirm": _form("Please confirm", CONFIRM_SCHEMA)}, request_state="round-1"
            )
        return f"state-ok: {ctx.request_state}"

    @pack.tool(
        scopes=scopes, description="Tests that inputRequests only include methods the client declared support for"
    )
    async def test_input_required_result_capabilities(ctx: Context) -> InputRequiredResult:
        caps = ctx.client_capabilities
        requests: dict[str, InputRequest] = {}
        if caps is None or caps.sampling is not None:
            requests["sample"] = _sample("Say hello", 50)
        if caps is None or caps.elicitation is not None:
            requests["ask"] = _form("What is your name?", NAME_SCHEMA)
        return InputRequiredResult(input_requests=requests, request_state="capability-gated")

    @pack.prompt(scopes=scopes, description="Tests InputRequiredResult from prompts/get (SEP-2322 non-tool request)")
    async def test_input_required_result_prompt(ctx: Context) -> list[UserMessage] | InputRequiredResult:
        if ctx.input_responses and "user_context" in ctx.input_responses:
            text = _elicited(ctx.input_responses["user_context"], "context") or "?"
            return [
                UserMessage(role="user", content=TextContent(type="text", text=f"Use the following context: {text}"))
            ]
        return InputRequiredResult(
            input_requests={"user_context": _form("What context should the prompt use?", CONTEXT_SCHEMA)}
        )
