"""The conformance pack: what the official MCP conformance suite's server scenarios call.

Off by default (``MCPS_PACKS=conformance`` turns it on). The fixtures follow the suite's scenario
texts and the SDK's own everything-server, grouped by what they exercise.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from app.packs.conformance import backchannel, content, input_required, protocol
from app.services import Services


def register(server: MCPServer[Any], services: Services) -> None:
    del services
    content.register(server)
    backchannel.register(server)
    input_required.register(server)
    protocol.register(server)
