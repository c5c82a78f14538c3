"""How a `ServiceError` reaches the caller of a tool: an ``isError`` result an agent can act on."""

from __future__ import annotations

from mcp.types import CallToolResult, TextContent

from app.errors import ServiceError


def error_result(error: ServiceError) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=error.summary())],
        structured_content=error.to_dict(),
        is_error=True,
    )
