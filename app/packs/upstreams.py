"""The upstream-client factory a pack is given: third-party HTTP clients already wired to the service.

Each client gets its circuit breaker (registered at once, so readiness lists it before the first
call), the shared ETag cache, the attempt observer (metrics and spans) and the service's upstream
timeouts and retry budget. It is opened when the app starts and closed when it stops; a call made
before start-up is UNAVAILABLE rather than a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from app.errors import ErrorCode, ServiceError
from app.upstream import AttemptObserver, BreakerRegistry, CircuitBreaker, EtagCache, UpstreamClient, UpstreamResponse
from app.upstream.client import DEFAULT_MAX_RESPONSE_BYTES

StartupHook = Callable[[AsyncExitStack], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class UpstreamBudget:
    """The service-wide bounds of one upstream call (``MCPS_UPSTREAM_*``)."""

    connect_timeout_seconds: float
    read_timeout_seconds: float
    total_timeout_seconds: float
    max_attempts: int


class Upstream:
    """One third-party API: its breaker now, its `UpstreamClient` from start-up until shutdown."""

    def __init__(self, name: str, pack: str, breaker: CircuitBreaker) -> None:
        self.name = name
        self.breaker = breaker
        self._pack = pack
        self._client: UpstreamClient | None = None

    @property
    def client(self) -> UpstreamClient:
        if self._client is None:
            raise ServiceError(ErrorCode.UNAVAILABLE, f"the {self._pack} pack is not started yet", retry_after_ms=1000)
        return self._client

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> UpstreamResponse:
        """`UpstreamClient.request` on this API (retries, breaker, ETags; failures are `ServiceError`)."""
        return await self.client.request(method, path, params=params, json=json, headers=headers)

    def _attach(self, client: UpstreamClient) -> None:
        self._client = client

    async def _detach(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class Upstreams:
    """Makes a pack's `Upstream` clients; the service supplies breakers, ETags, observer and budget."""

    def __init__(
        self,
        pack: str,
        *,
        breakers: BreakerRegistry,
        etag_cache: EtagCache,
        observer: AttemptObserver | None,
        budget: UpstreamBudget,
        on_startup: Callable[[StartupHook], None],
    ) -> None:
        self._pack = pack
        self._breakers = breakers
        self._etag_cache = etag_cache
        self._observer = observer
        self._on_startup = on_startup
        self.budget = budget

    @property
    def total_timeout_seconds(self) -> float:
        """How long one upstream call may take, retries included (size tool timeouts from it)."""
        return self.budget.total_timeout_seconds

    def client(
        self,
        name: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> Upstream:
        """An upstream named ``name`` (its breaker's and metrics' label) at ``base_url``."""
        upstream = Upstream(name, self._pack, self._breakers.get(name))
        budget = self.budget

        async def open_client(stack: AsyncExitStack) -> None:
            upstream._attach(
                UpstreamClient(
                    name,
                    base_url,
                    headers=headers,
                    connect_timeout=budget.connect_timeout_seconds,
                    read_timeout=budget.read_timeout_seconds,
                    total_timeout=budget.total_timeout_seconds,
                    max_attempts=budget.max_attempts,
                    breaker=upstream.breaker,
                    etag_cache=self._etag_cache,
                    observer=self._observer,
                    max_response_bytes=max_response_bytes,
                )
            )
            stack.push_async_callback(upstream._detach)

        self._on_startup(open_client)
        return upstream
