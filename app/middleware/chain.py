"""The order of the MCP middleware chain, outermost first, in one place.

The MCP span (`app.observability.mcp_span`, at the place of the SDK's own) and the SDK's
request-state boundary run outside these. Ours, top to bottom, each in its own module:

1. request scope   the call context bound for the message; metrics, span attributes, access line
2. error boundary  every failure below becomes the answer here, once; the outcome is recorded
3. authorization   the principal onto the call context; lists filtered, calls refused without scopes
4. rate limit      token bucket per principal (and tool), shared by the fleet through Redis
5. listen limit    open subscriptions/listen streams capped per principal and per process
6. idempotency     write tools: a retried idempotency key replays the first result
7. cache           read-only tools: shared, per-tenant result cache with coalescing; writes invalidate
8. deadline        per-tool timeout and concurrency limit
9. arguments       the tool's arguments checked against its own model, answered field by field
then the tool itself (the SDK's handler).

Tools only declare policy (`app.policy.ToolPolicy`); these stages enforce it and raise; only the
boundary answers.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerMiddleware

from app.auth.metadata import resource_metadata_url
from app.auth.principal import Principal
from app.backends import CacheStore, IdempotencyStore, RateLimitStore
from app.middleware.arguments import ArgumentsMiddleware
from app.middleware.authorization import AuthorizationMiddleware
from app.middleware.boundary import ErrorBoundaryMiddleware
from app.middleware.cache import CacheMiddleware
from app.middleware.deadline import DeadlineMiddleware
from app.middleware.idempotency import IdempotencyMiddleware
from app.middleware.listen_limit import ListenLimitMiddleware
from app.middleware.rate_limit import RateLimitMiddleware
from app.middleware.request_scope import RequestScopeMiddleware
from app.observability.mcp_metrics import McpObserver
from app.policy import Policies
from app.settings import Settings


def build_chain(
    settings: Settings,
    policies: Policies,
    *,
    rate_limiter: RateLimitStore,
    idempotency: IdempotencyStore,
    cache: CacheStore,
    observer: McpObserver | None,
    local_principal: Principal | None = None,
) -> list[ServerMiddleware[Any]]:
    """The chain; ``local_principal`` is the caller of a transport without credentials (stdio)."""
    return [
        RequestScopeMiddleware(observer),
        ErrorBoundaryMiddleware(),
        AuthorizationMiddleware(
            policies,
            auth_disabled=settings.auth_disabled,
            local_principal=local_principal,
            resource_metadata=resource_metadata_url(settings),
        ),
        RateLimitMiddleware(rate_limiter, settings),
        ListenLimitMiddleware(
            per_principal=settings.max_listen_streams_per_principal, total=settings.max_listen_streams
        ),
        IdempotencyMiddleware(
            idempotency,
            ttl_seconds=settings.idempotency_ttl_seconds,
            lock_seconds=settings.idempotency_lock_seconds,
            wait_seconds=settings.idempotency_wait_seconds,
        ),
        CacheMiddleware(cache),
        DeadlineMiddleware(default_timeout_seconds=settings.tool_timeout_seconds),
        ArgumentsMiddleware(policies),
    ]
