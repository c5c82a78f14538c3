"""A test pack whose tools exercise every guard-chain policy; bodies count their runs per process."""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from pydantic import Field

from app.errors import ErrorCode, ServiceError
from app.packs.api import NoSettings, Pack, PackContext

RUNS: Counter[str] = Counter()
log = logging.getLogger("tests.guard_pack")


def _ran(tool: str) -> dict[str, Any]:
    RUNS[tool] += 1
    log.warning("%s body ran", tool)
    return {"runs": RUNS[tool], "pid": os.getpid()}


def setup(pack: PackContext[NoSettings]) -> None:
    scopes = ("guard",)

    @pack.tool(
        "echo_cached",
        description="Echo text; cached.",
        scopes=scopes,
        read_only=True,
        cache_ttl_seconds=30,
        cache_tags=("notes:{principal}",),
    )
    async def echo_cached(text: Annotated[str, Field(max_length=100)]) -> dict[str, Any]:
        return {"text": text, **_ran("echo_cached")}

    @pack.tool("slow_cached", description="Slow read; cached.", scopes=scopes, read_only=True, cache_ttl_seconds=30)
    async def slow_cached(key: Annotated[str, Field(max_length=100)]) -> dict[str, Any]:
        await anyio.sleep(0.5)
        return {"key": key, **_ran("slow_cached")}

    @pack.tool(
        "note_write",
        description="A write.",
        scopes=scopes,
        idempotent_write=True,
        invalidates=("notes:{principal}",),
    )
    async def note_write(
        text: Annotated[str, Field(max_length=100)],
        delay: Annotated[float, Field(ge=0, le=10)] = 0,
        fail: bool = False,
    ) -> dict[str, Any]:
        await anyio.sleep(delay)
        result = _ran("note_write")
        if fail:
            raise ServiceError(ErrorCode.UPSTREAM_UNAVAILABLE, "pretend the store failed")
        return {"text": text, **result}

    @pack.tool("too_slow", description="Sleeps past its timeout.", scopes=scopes, read_only=True, timeout_seconds=0.5)
    async def too_slow(seconds: Annotated[float, Field(ge=0, le=30)]) -> str:
        await anyio.sleep(seconds)
        return "done"

    @pack.tool("one_at_a_time", description="Bulkheaded.", scopes=scopes, read_only=True, max_concurrency=1)
    async def one_at_a_time(seconds: Annotated[float, Field(ge=0, le=30)]) -> str:
        await anyio.sleep(seconds)
        return "done"

    @pack.tool("explode", description="Crashes.", scopes=scopes, read_only=True)
    async def explode() -> str:
        raise RuntimeError("internal detail that must not leak: password=hunter2")

    @pack.tool("refuse", description="Raises a ServiceError.", scopes=scopes, read_only=True)
    async def refuse(code: ErrorCode) -> str:
        raise ServiceError(code, f"refused with {code.value}", details={"why": "asked to"})

    @pack.tool("bounded", description="Strict arguments.", scopes=scopes, read_only=True)
    async def bounded(
        text: Annotated[str, Field(max_length=10)], n: Annotated[int, Field(ge=1, le=5)]
    ) -> dict[str, Any]:
        return {"text": text, "n": n}

    @pack.tool("cheap", description="Counts calls.", scopes=scopes, read_only=True)
    async def cheap() -> dict[str, Any]:
        return _ran("cheap")

    @pack.tool("costly", description="Costs 5 tokens.", scopes=scopes, read_only=True, cost=5)
    async def costly() -> dict[str, Any]:
        return _ran("costly")

    @pack.tool("progress", description="Reports progress when asked; declares no notifications.", scopes=scopes)
    async def progress(ctx: Context) -> str:
        for step in (1, 2):
            await ctx.report_progress(progress=step, total=2, message=f"step {step}")
        return "progressed"

    @pack.tool("chatty", description="Logs while it runs (declared).", scopes=scopes, read_only=True, notifies=True)
    async def chatty(ctx: Context) -> str:
        await ctx.info("chatty says hello")
        return "chatted"

    @pack.tool("muttering", description="Logs while it runs, undeclared.", scopes=scopes, read_only=True)
    async def muttering(ctx: Context) -> str:
        await ctx.info("muttering says hello")
        return "muttered"


pack = Pack("guard", setup)
