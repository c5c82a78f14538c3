"""A test-only pack whose tools end each way the metrics tell apart, installed via the entry-point group.

obs_echo      ok (read-only, cached 60 s: miss, then hit; a slow first call is joined: coalesced)
obs_fail      tool_error (a ServiceError the tool raises)
obs_crash     error (an unexpected exception: INTERNAL_ERROR)
obs_slow      timeout (its policy allows 0.2 s; it sleeps longer)
obs_costly    rate_limited on the second call (costs a whole bucket; run with MCPS_RATE_LIMIT_PER_TOOL)
obs_secret    denied (needs a scope test principals lack)
obs_write     an idempotency-keyed write (new, replay, conflict)
obs_pid       the serving process id (multi-worker tests)
"""

from __future__ import annotations

import os

import anyio

from app.errors import ErrorCode, ServiceError
from app.packs.api import NoSettings, Pack, PackContext

SCOPE = "obs"


def setup(pack: PackContext[NoSettings]) -> None:

    @pack.tool(
        "obs_echo",
        description="Echo the text back (cached).",
        scopes=(SCOPE,),
        read_only=True,
        cache_ttl_seconds=60,
    )
    async def obs_echo(text: str, delay: float = 0.0) -> str:
        if delay:
            await anyio.sleep(delay)
        return text

    @pack.tool("obs_fail", description="Always fails with NOT_FOUND.", scopes=(SCOPE,))
    def obs_fail() -> str:
        raise ServiceError(ErrorCode.NOT_FOUND, "nothing here")

    @pack.tool("obs_crash", description="Always crashes.", scopes=(SCOPE,))
    def obs_crash() -> str:
        raise RuntimeError("boom: a bug")

    @pack.tool("obs_slow", description="Sleeps past its timeout.", scopes=(SCOPE,), timeout_seconds=0.2)
    async def obs_slow() -> str:
        await anyio.sleep(5)
        return "never"

    @pack.tool("obs_costly", description="Costs a whole bucket.", scopes=(SCOPE,), cost=1e9)
    def obs_costly() -> str:
        return "expensive"

    @pack.tool("obs_secret", description="Needs a scope nobody has.", scopes=("obs:secret",))
    def obs_secret() -> str:
        return "secret"

    @pack.tool("obs_write", description="An idempotent write.", scopes=(SCOPE,), idempotent_write=True)
    def obs_write(value: str) -> str:
        return f"wrote {value}"

    @pack.tool("obs_pid", description="The id of the worker process that served the call.", scopes=(SCOPE,))
    def obs_pid() -> int:
        return os.getpid()


pack = Pack("obs", setup)
