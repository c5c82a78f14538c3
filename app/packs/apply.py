"""Applying what a pack declared: to the server through `MCPServer`'s public API (two gaps go through
`app.sdk_gaps`) and to the policy registry, so every item the server serves has a declared policy.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool

from app import sdk_gaps
from app.errors import contain_crashes
from app.packs.declarations import Declarations
from app.policy import Policies


def apply(server: MCPServer[Any], policies: Policies, declared: Declarations) -> None:
    """Register what a pack declared, with its policy; the SDK's argument validation is kept per tool."""
    for tool in declared.tools:
        # The SDK builds its own Tool in add_tool and offers no public way to read it back; this one, from
        # the same function, is kept only for its argument validation (the guard chain validates once, early).
        built = Tool.from_function(
            tool.fn,
            name=tool.name,
            title=tool.title,
            description=tool.description,
            annotations=tool.annotations,
            structured_output=tool.structured_output,
        )
        server.add_tool(
            contain_crashes(tool.fn, tool.name),  # a crash reaches the error boundary as INTERNAL_ERROR
            name=tool.name,
            title=tool.title,
            description=tool.description,
            annotations=tool.annotations,
            structured_output=tool.structured_output,
        )
        if tool.input_schema is not None:
            sdk_gaps.set_input_schema(server, tool.name, tool.input_schema)
        policies.declare_tool(tool.name, tool.policy, built.fn_metadata.validate_arguments)
    for resource in declared.resources:
        server.resource(
            resource.uri, name=resource.name, description=resource.description, mime_type=resource.mime_type
        )(resource.fn)
        policies.declare_resource(resource.uri, resource.scopes)
    for prompt in declared.prompts:
        server.prompt(name=prompt.name, description=prompt.description)(prompt.fn)
        policies.declare_prompt(prompt.name or prompt.fn.__name__, prompt.scopes)
    for complete in declared.completions:
        server.completion()(complete)  # type: ignore[no-untyped-call]  # untyped in mcp 2.3
    for method in declared.methods:
        sdk_gaps.add_request_handler(server, method.method, method.params_type, method.handler)
