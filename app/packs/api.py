"""What a pack author writes against: a `Pack` (name, settings model, required packs, setup) whose
setup receives a typed `PackContext` and declares tools, resources and prompts on it.

    class TasksSettings(PackSettings):
        max_per_principal: int = Field(10_000, ge=1)      # MCPS_TASKS_MAX_PER_PRINCIPAL

    def setup(pack: PackContext[TasksSettings]) -> None:
        @pack.tool("get_task", description="...", scopes=("tasks:read",), read_only=True,
                   cache_ttl_seconds=30, cache_tags=("tasks:{principal}",))
        async def get_task(task_id: Annotated[str, Field(max_length=64)]) -> Task: ...

    tasks = Pack("tasks", setup, settings=TasksSettings)

Every tool gets MCP annotations (readOnlyHint, destructiveHint, idempotentHint, openWorldHint)
from the same declaration as its policy, so what a client is told and what the service enforces
cannot drift. Built-in packs are listed in `app.packs`; others are found through the
``mcp_service.packs`` entry-point group, whose entries name a `Pack` object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Generic, overload

from app.packs.context import (
    HealthSnapshot,
    NoSettings,
    PackContext,
    PackSettings,
    PackStorage,
    S,
    ServiceView,
    SharedKey,
)
from app.packs.declarations import current_idempotency_key
from app.packs.upstreams import Upstream, Upstreams
from app.settings import ENV_PREFIX

__all__ = [
    "HealthSnapshot",
    "NoSettings",
    "Pack",
    "PackContext",
    "PackSettings",
    "PackStorage",
    "ServiceView",
    "SharedKey",
    "Upstream",
    "Upstreams",
    "current_idempotency_key",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class Pack(Generic[S]):
    """A pack definition. Nothing runs until the service loads it: ``setup`` is called once per app."""

    @overload
    def __init__(
        self: Pack[NoSettings],
        name: str,
        setup: Callable[[PackContext[NoSettings]], None],
        *,
        requires: Sequence[str] = (),
    ) -> None: ...

    @overload
    def __init__(
        self,
        name: str,
        setup: Callable[[PackContext[S]], None],
        *,
        settings: type[S],
        requires: Sequence[str] = (),
    ) -> None: ...

    def __init__(
        self,
        name: str,
        setup: Callable[[PackContext[Any]], None],
        *,
        settings: type[PackSettings] = NoSettings,
        requires: Sequence[str] = (),
    ) -> None:
        if not _NAME.match(name):
            raise ValueError(f"pack name {name!r}: lowercase letters, digits and _ (up to 40), starting with a letter")
        self.name = name
        self.setup = setup
        self.settings_model = settings
        self.requires = tuple(requires)

    @property
    def env_prefix(self) -> str:
        """Where this pack's settings come from: ``MCPS_<NAME>_``."""
        return f"{ENV_PREFIX}{self.name.upper()}_"

    def __repr__(self) -> str:
        return f"Pack({self.name!r})"
