"""What the app shares with its transport, middleware and tool packs, built once per app.

Passed explicitly (no module globals) so several apps can live in one process. Pools that need
the event loop are opened by the app's lifespan through `open` and closed through `close`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import anyio
from mcp.server.subscriptions import InMemorySubscriptionBus

from app.backends import (
    Backend,
    CacheStore,
    MemoryCache,
    OperationObserver,
    RateLimitStore,
    TieredCache,
    build_backend,
    build_rate_limiter,
)
from app.backends.subscriptions import RedisSubscriptionBus
from app.health import HealthRegistry
from app.lifecycle import Lifecycle
from app.metrics import Metrics
from app.policy import Policies
from app.settings import Settings
from app.upstream import BreakerRegistry, EtagCache
from app.upstream.client import AttemptObserver


@dataclass
class Services:
    settings: Settings
    lifecycle: Lifecycle
    health: HealthRegistry
    metrics: Metrics
    backend: Backend
    rate_limiter: RateLimitStore
    cache: CacheStore
    breakers: BreakerRegistry
    etag_cache: EtagCache
    policies: Policies = field(default_factory=Policies)
    enabled_packs: list[str] = field(default_factory=list)
    upstream_observer: AttemptObserver | None = None  # set by `app.observability.wiring.wire`
    # Redis pub/sub for a fleet; the SDK's in-process bus for one replica (listen streams share it).
    subscriptions: RedisSubscriptionBus | InMemorySubscriptionBus = field(default_factory=InMemorySubscriptionBus)
    _startup: list[Callable[[AsyncExitStack], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    def create(
        cls, settings: Settings, metrics: Metrics, *, backend_observer: OperationObserver | None = None
    ) -> Services:
        """Everything one app shares, from its settings; ``backend_observer`` times each Redis operation."""
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        backend = build_backend(
            redis_url,
            key_prefix=settings.redis_key_prefix,
            mode=settings.redis_mode,
            socket_timeout_seconds=settings.redis_timeout_seconds,
            connect_timeout_seconds=settings.redis_timeout_seconds,
            observer=backend_observer,
        )
        health = HealthRegistry(settings.readiness_check_timeout_seconds)
        rate_limiter = build_rate_limiter(
            backend,
            health,
            fallback_policy=settings.rate_limit_fallback,
            local_share=1 / settings.rate_limit_replicas,
            lease_max=settings.rate_limit_lease_max,
        )
        cache: CacheStore = backend.cache
        if backend.redis is not None:
            if settings.cache_l1_ttl_seconds > 0:
                cache = TieredCache(
                    MemoryCache(settings.cache_l1_max_entries), backend.cache, settings.cache_l1_ttl_seconds
                )
            # Not required for readiness: every replica shares Redis, so failing readiness on its outage
            # would empty the whole fleet; the service degrades per policy instead, and says so here.
            health.add("redis", backend.health, required=False)
        breakers = BreakerRegistry(
            failure_threshold=settings.breaker_failure_threshold,
            window_seconds=settings.breaker_window_seconds,
            open_seconds=settings.breaker_open_seconds,
            half_open_successes=settings.breaker_half_open_successes,
        )
        health.add("upstreams", breakers.check, required=False)
        services = cls(
            settings=settings,
            lifecycle=Lifecycle(),
            health=health,
            metrics=metrics,
            backend=backend,
            rate_limiter=rate_limiter,
            cache=cache,
            breakers=breakers,
            etag_cache=EtagCache(),
        )

        async def open_backend(stack: AsyncExitStack) -> None:
            await backend.open()
            stack.push_async_callback(backend.close)

        services.on_startup(open_backend)
        if backend.redis is not None:
            services.subscriptions = bus = RedisSubscriptionBus(backend.redis)  # the backend's connection

            async def run_bus(stack: AsyncExitStack) -> None:
                group = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(group.cancel_scope.cancel)  # runs first: stops the listener
                group.start_soon(bus.run)

            services.on_startup(run_bus)
        return services

    def on_startup(self, hook: Callable[[AsyncExitStack], Awaitable[None]]) -> None:
        """Run ``hook`` when the app starts; it registers its own cleanup on the exit stack it is given."""
        self._startup.append(hook)

    async def open(self, stack: AsyncExitStack) -> None:
        for hook in self._startup:
            await hook(stack)
