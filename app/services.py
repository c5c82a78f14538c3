"""What the app shares with its transport, middleware and tool packs, built once per app.

Passed explicitly (no module globals) so several apps can live in one process. Pools that need
the event loop are opened by the app's lifespan through `open` and closed through `close`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from app.health import HealthRegistry
from app.lifecycle import Lifecycle
from app.metrics import Metrics
from app.policy import Policies
from app.settings import Settings


@dataclass
class Services:
    settings: Settings
    lifecycle: Lifecycle
    health: HealthRegistry
    metrics: Metrics
    policies: Policies = field(default_factory=Policies)
    enabled_packs: list[str] = field(default_factory=list)
    _startup: list[Callable[[AsyncExitStack], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def create(cls, settings: Settings) -> Services:
        return cls(
            settings=settings,
            lifecycle=Lifecycle(),
            health=HealthRegistry(settings.readiness_check_timeout_seconds),
            metrics=Metrics(),
        )

    def on_startup(self, hook: Callable[[AsyncExitStack], Awaitable[None]]) -> None:
        """Run ``hook`` when the app starts; it registers its own cleanup on the exit stack it is given."""
        self._startup.append(hook)

    async def open(self, stack: AsyncExitStack) -> None:
        for hook in self._startup:
            await hook(stack)
