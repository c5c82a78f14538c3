"""The conformance pack: what the official MCP conformance suite's server scenarios call.

Off by default (``MCPS_PACKS=conformance`` turns it on). The fixtures follow the suite's scenario
texts and the SDK's own everything-server, grouped by what they exercise.
"""

from __future__ import annotations

from app.packs.api import NoSettings, Pack, PackContext
from app.packs.conformance import backchannel, content, input_required, long_running, protocol

SCOPES = ("conformance",)  # everything here needs this scope (or admin): fixtures, not features


def setup(context: PackContext[NoSettings]) -> None:
    content.register(context, SCOPES)
    backchannel.register(context, SCOPES)
    input_required.register(context, SCOPES)
    protocol.register(context, SCOPES)
    long_running.register(context, SCOPES)


pack = Pack("conformance", setup)
