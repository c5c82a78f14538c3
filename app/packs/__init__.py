"""Tool packs: each is a `Pack` (see `app.packs.api`), enabled by name in settings or passed in-process.

Built-in packs are listed in `app.packs.loader.BUILTIN_PACKS`; third-party packs are found through
the ``mcp_service.packs`` entry-point group, so a team ships a pack as its own distribution without
touching this repo.
"""

from __future__ import annotations

from app.packs.loader import BUILTIN_PACKS, ENTRY_POINT_GROUP, PackLoadError, PackSource, load_packs

__all__ = ["BUILTIN_PACKS", "ENTRY_POINT_GROUP", "PackLoadError", "PackSource", "load_packs"]
