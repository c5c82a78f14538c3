"""Protocol-level fixtures: logging/setLevel, resource subscriptions, completion, list-changed events."""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.prompts.base import Prompt
from mcp.types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    EmptyResult,
    PromptReference,
    ResourceTemplateReference,
    SetLevelRequestParams,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

from app.packs.api import PackContext

logger = logging.getLogger(__name__)

# Per-server bound on subscriptions: a client cannot grow it without limit.
MAX_SUBSCRIPTIONS = 1000


def register(pack: PackContext[Any], scopes: tuple[str, ...]) -> None:
    subscriptions: set[str] = set()

    async def set_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        logger.info("client asked for log level %s", params.level)
        return EmptyResult()

    async def subscribe(ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        if len(subscriptions) < MAX_SUBSCRIPTIONS:
            subscriptions.add(str(params.uri))
        return EmptyResult()

    async def unsubscribe(ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        subscriptions.discard(str(params.uri))
        return EmptyResult()

    pack.method("logging/setLevel", SetLevelRequestParams, set_level)
    pack.method("resources/subscribe", SubscribeRequestParams, subscribe)
    pack.method("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)

    @pack.completion
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        return Completion(values=[], total=0, has_more=False)

    def dynamic() -> str:
        return "dynamic"

    @pack.tool(
        scopes=scopes, description="Mutates the tool list and announces it to subscriptions/listen streams (SEP-2575)"
    )
    async def test_trigger_tool_change(ctx: Context) -> str:
        server = ctx.mcp_server  # the SDK hands every tool its server: an item that exists for a moment
        server.add_tool(dynamic, name="test_dynamic_tool", description="A tool that exists for a moment.")
        server.remove_tool("test_dynamic_tool")
        await ctx.notify_tools_changed()
        return "tool list changed"

    @pack.tool(
        scopes=scopes, description="Mutates the prompt list and announces it to subscriptions/listen streams (SEP-2575)"
    )
    async def test_trigger_prompt_change(ctx: Context) -> str:
        server = ctx.mcp_server
        server.add_prompt(Prompt.from_function(dynamic, name="test_dynamic_prompt", description="dynamic"))
        server.remove_prompt("test_dynamic_prompt")
        await ctx.notify_prompts_changed()
        return "prompt list changed"
