"""Tools that talk back to the client while they run: log and progress notifications, SSE polling,
and server-to-client requests (sampling, elicitation).

Server-to-client *requests* need a back-channel: stateful sessions (handshake era) have one;
stateless HTTP does not, so there these tools answer with a clear "not supported" text instead of
failing the call. The 2026-07-28 era uses InputRequiredResult instead (see `input_required`).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.types import MISSING_REQUIRED_CLIENT_CAPABILITY, SamplingMessage, TextContent
from pydantic import BaseModel, Field

from app.packs.api import PackContext


class UserResponse(BaseModel):
    response: str = Field(description="User's response")


class DefaultsSchema(BaseModel):
    """SEP-1034: a default for every primitive type."""

    name: str = Field(default="John Doe", description="User name")
    age: int = Field(default=30, description="User age")
    score: float = Field(default=95.5, description="User score")
    status: str = Field(
        default="active", description="User status", json_schema_extra={"enum": ["active", "inactive", "pending"]}
    )
    verified: bool = Field(default=True, description="Verification status")


class EnumSchemas(BaseModel):
    """SEP-1330: every enum shape a form may carry."""

    untitledSingle: str = Field(
        description="Simple enum without titles", json_schema_extra={"enum": ["option1", "option2", "option3"]}
    )
    titledSingle: str = Field(
        description="Enum with titled options (oneOf)",
        json_schema_extra={
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ]
        },
    )
    untitledMulti: list[str] = Field(
        description="Multi-select without titles",
        json_schema_extra={"items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
    )
    titledMulti: list[str] = Field(
        description="Multi-select with titled options",
        json_schema_extra={
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            }
        },
    )
    legacyEnum: str = Field(
        description="Legacy enum with enumNames",
        json_schema_extra={"enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
    )


async def _elicit(ctx: Context, message: str, schema: type[BaseModel], prefix: str) -> str:
    try:
        result = await ctx.elicit(message=message, schema=schema)
    except Exception as exc:  # no back-channel (stateless) or the client lacks the capability
        return f"Elicitation not supported or error: {exc}"
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"{prefix}: action={result.action}, content={content}"


def register(pack: PackContext[Any], scopes: tuple[str, ...]) -> None:
    @pack.tool(scopes=scopes, notifies=True, description="Tests tool that emits log messages during execution")
    async def test_tool_with_logging(ctx: Context) -> str:
        await ctx.info("Tool execution started")
        await anyio.sleep(0.05)
        await ctx.info("Tool processing data")
        await anyio.sleep(0.05)
        await ctx.info("Tool execution completed")
        return "Tool with logging executed successfully"

    @pack.tool(
        scopes=scopes,
        notifies=True,
        description="Emits log notifications; on 2026-07-28 only when the request's _meta opted in.",
    )
    async def test_logging_tool(ctx: Context) -> str:
        await ctx.info("test_logging_tool log line 1")
        await ctx.info("test_logging_tool log line 2")
        return "logging tool done"

    @pack.tool(scopes=scopes, notifies=True, description="Tests tool that reports progress notifications")
    async def test_tool_with_progress(ctx: Context) -> str:
        for step in (0, 50, 100):
            await ctx.report_progress(progress=step, total=100, message=f"Completed step {step} of 100")
            if step < 100:
                await anyio.sleep(0.05)
        meta = ctx.request_context.meta if ctx.request_context else None
        token = meta.get("progress_token") if meta else 0
        return str(token)

    @pack.tool(scopes=scopes, notifies=True, description="Tests SSE polling by closing the stream mid-call (SEP-1699)")
    async def test_reconnection(ctx: Context) -> str:
        await ctx.info("Before disconnect")
        await ctx.close_sse_stream()
        await anyio.sleep(0.2)
        await ctx.info("After reconnect")
        return "Reconnection test completed"

    @pack.tool(scopes=scopes, notifies=True, description="Tests server-initiated sampling (LLM completion request)")
    async def test_sampling(prompt: Annotated[str, Field(max_length=10_000)], ctx: Context) -> str:
        try:
            result = await ctx.session.create_message(
                messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
                max_tokens=100,
                related_request_id=ctx.request_id,
            )
        except Exception as exc:  # no back-channel (stateless) or the client lacks the capability
            return f"Sampling not supported or error: {exc}"
        text = result.content.text if isinstance(result.content, TextContent) else "No response"
        return f"LLM response: {text}"

    @pack.tool(scopes=scopes, notifies=True, description="Tests server-initiated elicitation (user input request)")
    async def test_elicitation(message: Annotated[str, Field(max_length=10_000)], ctx: Context) -> str:
        return await _elicit(ctx, message, UserResponse, "User response")

    @pack.tool(
        scopes=scopes,
        notifies=True,
        description="Tests elicitation with default values for all primitive types (SEP-1034)",
    )
    async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
        return await _elicit(ctx, "Please provide user information", DefaultsSchema, "Elicitation completed")

    @pack.tool(scopes=scopes, notifies=True, description="Tests elicitation with enum schema variations per SEP-1330")
    async def test_elicitation_sep1330_enums(ctx: Context) -> str:
        message = "Please select values using different enum schema types"
        return await _elicit(ctx, message, EnumSchemas, "Elicitation completed")

    @pack.tool(
        scopes=scopes,
        description="Requires the client 'sampling' capability; -32021 with requiredCapabilities when absent.",
    )
    async def test_missing_capability(ctx: Context) -> str:
        caps = ctx.session.client_capabilities
        if caps is None or caps.sampling is None:
            raise MCPError(
                code=MISSING_REQUIRED_CLIENT_CAPABILITY,
                message="This tool requires the client 'sampling' capability",
                data={"requiredCapabilities": {"sampling": {}}},
            )
        return "Client declared sampling capability; proceeding."
