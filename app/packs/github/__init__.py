"""The github pack: GitHub REST tools (repositories, files, issues) for agents.

``MCPS_PACKS=github``. Settings: ``MCPS_GITHUB_API_URL`` (GitHub Enterprise: ``https://HOST/api/v3``),
``MCPS_GITHUB_TOKEN`` (the service's own token; optional: without one the pack reads public data
unauthenticated, at GitHub's lower limit), ``MCPS_GITHUB_MAX_FILE_BYTES``. Scopes: ``github:read``
for the reads, ``github:write`` for ``create_issue``.

Whatever the token can see, every caller holding ``github:read`` can read: give the service a
token scoped to what it is meant to expose (a fine-grained token on chosen repositories).
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from app.packs.api import Pack
from app.packs.github.client import GitHub
from app.packs.github.tools import register_tools
from app.services import Services


def register(server: MCPServer[Any], services: Services) -> None:
    pack = Pack("github", server, services)
    github = GitHub(services)
    register_tools(pack, github)
    if "tasks" in services.settings.packs:
        from app.packs.github.compose import register_compose

        register_compose(pack, github)
