"""The system pack: what the service says about itself.

Tools ``health_check`` (the readiness data: dependencies with latency, breakers, memory) and
``server_info`` (version, packs, protocol versions); resources ``config://service`` (effective
non-secret settings, admin only) and ``docs://tools`` (a reference of the tools the caller may
use); the ``code-review`` prompt.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from app.packs.api import Pack
from app.packs.system import info, prompts, reference
from app.services import Services


def register(server: MCPServer[Any], services: Services) -> None:
    pack = Pack("system", server, services)
    info.register(pack)
    reference.register(pack)
    prompts.register(pack)
