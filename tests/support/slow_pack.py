"""A third-party-style pack used by tests, installed through the entry-point group at run time.

It proves the plugin path (entry point -> `Pack`) and gives shutdown tests a call that stays in
flight for as long as they need.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from pydantic import Field

from app.auth.principal import current_principal
from app.packs.api import NoSettings, Pack, PackContext

SCOPES = ("slow",)


def setup(pack: PackContext[NoSettings]) -> None:
    @pack.tool("whoami", scopes=SCOPES, description="Report the calling principal, as the guard chain bound it.")
    def whoami() -> dict[str, Any]:
        principal = current_principal()
        logging.getLogger("tests.slow_pack").warning("whoami body ran for %s", principal.id)
        return {"id": principal.id, "kind": principal.kind, "scopes": sorted(principal.scopes)}

    @pack.tool(
        "sleep",
        scopes=SCOPES,
        description="Wait the given number of seconds, reporting progress each second, then say so.",
    )
    async def sleep(ctx: Context, seconds: float = Field(ge=0, le=60)) -> str:
        steps = max(1, int(seconds))
        for step in range(steps):
            await anyio.sleep(seconds / steps)
            await ctx.report_progress(step + 1, steps)
        return f"slept {seconds:g}s"

    @pack.tool(
        "slow_task_write",
        scopes=SCOPES,
        description="A write that may run as a task (tasks extension): waits, then says so. Idempotent with a key.",
        idempotent_write=True,
        task_support="optional",
    )
    async def slow_task_write(seconds: float = Field(0.2, ge=0, le=60)) -> str:
        await anyio.sleep(seconds)
        return f"wrote after {seconds:g}s"


def setup_broken(pack: PackContext[NoSettings]) -> None:
    raise RuntimeError("this pack is broken on purpose")


pack = Pack("slow", setup)
broken = Pack("broken", setup_broken)
