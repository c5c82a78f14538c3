"""Tool packs: each is a `register(server, services)` callable, enabled by name in settings.

Built-in packs are listed here; third-party packs are found through the ``mcp_service.packs``
entry-point group, so a team ships a pack as its own distribution without touching this repo.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from mcp.server.mcpserver import MCPServer

from app.packs._sdk import inventory
from app.policy import Policies, ToolPolicy
from app.services import Services

ENTRY_POINT_GROUP = "mcp_service.packs"

PackRegistrar = Callable[[MCPServer[Any], Services], None]

BUILTIN_PACKS: dict[str, str] = {
    "system": "app.packs.system:register",
    "tasks": "app.packs.tasks:register",
    "github": "app.packs.github:register",
    "weather": "app.packs.weather:register",
    "conformance": "app.packs.conformance:register",
}


class PackLoadError(Exception):
    """A pack could not be found or failed to register; the message names the pack."""


def _resolve(name: str) -> PackRegistrar:
    target = BUILTIN_PACKS.get(name)
    if target is not None:
        module_name, _, attr = target.partition(":")
        registrar: PackRegistrar = getattr(importlib.import_module(module_name), attr)
        return registrar
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            loaded: PackRegistrar = ep.load()
            return loaded
    known = sorted({*BUILTIN_PACKS, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})
    raise PackLoadError(f"tool pack {name!r} is not installed (known packs: {', '.join(known) or 'none'})")


def load_packs(server: MCPServer[Any], services: Services) -> None:
    """Register every enabled pack, in the order given; any failure stops start-up naming the pack."""
    for name in dict.fromkeys(services.settings.packs):
        before = inventory(server)
        try:
            registrar = _resolve(name)
            registrar(server, services)
        except PackLoadError:
            raise
        except Exception as exc:
            raise PackLoadError(f"tool pack {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
        _default_policies(services.policies, name, before, inventory(server))
        services.enabled_packs.append(name)


def _default_policies(
    policies: Policies,
    pack: str,
    before: tuple[set[str], set[str], set[str], set[str]],
    after: tuple[set[str], set[str], set[str], set[str]],
) -> None:
    """Whatever the pack added without declaring a policy requires the pack's name as a scope."""
    scopes = (pack,)
    tools, uris, templates, prompts = (now - then for now, then in zip(after, before, strict=True))
    for tool in tools - policies.tools.keys():
        policies.declare_tool(tool, ToolPolicy(scopes=scopes))
    for uri in (uris | templates) - policies.resources.keys() - policies.templates.keys():
        policies.declare_resource(uri, scopes)
    for prompt in prompts - policies.prompts.keys():
        policies.declare_prompt(prompt, scopes)
