"""Honest capabilities: a ``listChanged`` flag only where something publishes those notifications.

A client that sees ``listChanged: true`` keeps a ``subscriptions/listen`` stream (2026-07-28) or
its session's GET stream open to hear about list changes. Nothing in this service sends
``notifications/{tools,prompts,resources}/list_changed``: packs are fixed when the process starts,
so the lists only change with a deployment, which a client sees as a new connection. An open
stream waiting for them would hold a connection (and, on serverless platforms, a machine) for
nothing. The handshake era's ``initialize`` already says false (the SDK's default notification
options); the 2026-07-28 ``server/discover`` sets every flag whenever ``subscriptions/listen`` is
served, so its answer is corrected here. Resource ``subscribe`` stays: the subscription bus
(`app.backends.subscriptions`) does publish ``notifications/resources/updated``.

`PUBLISHED_LIST_CHANGES` is where a future publisher (say, packs reloaded at run time) says so.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer

from app import sdk_gaps

# The lists whose changes something in the service announces: none today (see the module docstring).
PUBLISHED_LIST_CHANGES: frozenset[str] = frozenset()
_LISTS = ("tools", "prompts", "resources")


def honest(capabilities: types.ServerCapabilities) -> types.ServerCapabilities:
    """``capabilities`` with ``listChanged`` true only for the lists in `PUBLISHED_LIST_CHANGES`."""
    update: dict[str, Any] = {}
    for name in _LISTS:
        capability = getattr(capabilities, name)
        published = name in PUBLISHED_LIST_CHANGES
        if capability is not None and bool(capability.list_changed) != published:
            update[name] = capability.model_copy(update={"list_changed": published})
    return capabilities.model_copy(update=update) if update else capabilities


def install(server: MCPServer[Any]) -> None:
    """Correct the SDK's ``server/discover`` answer (after every handler is registered)."""

    def wrap(handler: sdk_gaps.RequestHandler) -> sdk_gaps.RequestHandler:
        async def discover(ctx: ServerRequestContext[Any, Any], params: Any) -> Any:
            result = await handler(ctx, params)
            if isinstance(result, types.DiscoverResult):
                return result.model_copy(update={"capabilities": honest(result.capabilities)})
            return result

        return discover

    sdk_gaps.wrap_request_handler(server, "server/discover", wrap)
