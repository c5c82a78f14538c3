"""The two places packs must reach past `MCPServer`'s public surface (mcp 2.3 has no accessor).

Kept here so an SDK upgrade that adds public API changes one file. The SDK's own conformance
fixture (examples/servers/everything-server) reaches in the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer


def lowlevel(server: MCPServer[Any]) -> Server[Any]:
    """The low-level server, for core methods MCPServer has no decorator for (logging/setLevel, subscribe)."""
    return server._lowlevel_server


def set_input_schema(server: MCPServer[Any], tool_name: str, schema: dict[str, Any]) -> None:
    """Publish a hand-written JSON Schema for a tool (e.g. 2020-12 keywords pydantic cannot express)."""
    tool = server._tool_manager.get_tool(tool_name)
    if tool is None:
        raise KeyError(tool_name)
    tool.parameters = schema


def inventory(server: MCPServer[Any]) -> tuple[set[str], set[str], set[str], set[str]]:
    """Names of the registered tools, resource URIs, resource templates and prompts."""
    tools = {tool.name for tool in server._tool_manager.list_tools()}
    resources = server._resource_manager
    uris = {str(resource.uri) for resource in resources.list_resources()}
    templates = {template.uri_template for template in resources.list_templates()}
    prompts = {prompt.name for prompt in server._prompt_manager.list_prompts()}
    return tools, uris, templates, prompts


def tool_argument_validator(server: MCPServer[Any], name: str) -> Callable[[dict[str, Any]], object] | None:
    """The SDK's own argument validation for tool ``name`` (None if there is no such tool)."""
    tool = server._tool_manager.get_tool(name)
    if tool is None:
        return None
    return tool.fn_metadata.validate_arguments
