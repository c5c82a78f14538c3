"""`create_app(settings)`: the whole service as one Starlette app.

    /health/live, /health/ready, /metrics   (ours, no auth)
    /mcp                                     (the SDK's streamable-HTTP transport, mounted)
    /sse, /messages/                         (HTTP+SSE, 2024-11-05: `app.http.legacy_sse`; MCPS_SSE_TRANSPORT)

Wrapped, outermost first, by `ObserveMiddleware` (request id, metrics, access log) and
`GateMiddleware` (shutdown gating). The lifespan opens pools, then runs the SDK's session
managers and the keep-alive ticker of event streams, and marks the process ready; shutdown unwinds
in reverse.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from app.auth.metadata import resource_metadata_routes
from app.auth.setup import build_auth, principal_identifier
from app.health import health_endpoints
from app.http.bearer import protect
from app.http.gate import GateMiddleware
from app.http.keepalive import KeepAlive
from app.http.mcp_route import direct_mcp_app
from app.http.observe import ObserveMiddleware
from app.http.sessions import SessionOwners
from app.http.streams import OpenStreams
from app.log import configure_logging
from app.metrics import Metrics
from app.observability.backend import RedisOperationMetrics
from app.observability.wiring import wire
from app.packs import PackSource
from app.sdk_gaps import close_listen_streams
from app.services import Services
from app.settings import Settings
from app.sse_transport import legacy_sse_routes
from app.transport import MCP_PATH, build_mcp_app, build_mcp_server


def create_app(
    settings: Settings, *, packs: Sequence[PackSource] | None = None, configure_logs: bool = True
) -> Starlette:
    """The service as one app; ``packs`` (names or `Pack` objects, e.g. from tests) replaces ``settings.packs``."""
    if configure_logs:
        # Before MCPServer(): its logging.basicConfig is then a no-op.
        configure_logging(settings.log_level, quiet_sdk=settings.stateless)
    metrics = Metrics(per_principal_cap=settings.metrics_principal_cap if settings.metrics_per_principal else 0)
    services = Services.create(settings, metrics, backend_observer=RedisOperationMetrics(metrics))
    observer = wire(services)  # metrics and traces of MCP messages, upstreams, breakers, Redis
    auth = build_auth(settings, services.health)
    server = build_mcp_server(services, observer, packs, auth=auth)
    notifying = [name for name, policy in services.policies.tools.items() if policy.notifies]
    mcp_app, session_managers = build_mcp_app(server, settings, notifying)
    close_listens = close_listen_streams(server)
    if close_listens is not None:
        services.lifecycle.on_stop(close_listens)  # listen streams end with their final result
    keepalive = KeepAlive(settings.stream_keepalive_seconds) if settings.stream_keepalive_seconds > 0 else None
    get_streams = sessions = None
    if not settings.stateless:
        get_streams = OpenStreams(settings.max_stream_seconds)
        services.lifecycle.on_stop(get_streams.close_all)
        sessions = SessionOwners(
            principal_identifier(auth[1]), settings.max_sessions_per_principal, settings.session_idle_timeout_seconds
        )
    sse_routes = legacy_sse_routes(server, settings, services, auth)
    live, ready = health_endpoints(services.lifecycle, services.health)
    scrape = protect(metrics.endpoint, settings.metrics_token)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await services.open(stack)
            for session_manager in session_managers:
                await stack.enter_async_context(session_manager.run())
            if keepalive is not None:
                ticker = await stack.enter_async_context(anyio.create_task_group())
                ticker.start_soon(keepalive.run)
                stack.callback(ticker.cancel_scope.cancel)  # unwound first: the ticker stops, then its group
            services.lifecycle.mark_ready()
            yield

    app = Starlette(
        routes=[
            Route("/health/live", live, methods=["GET", "HEAD"]),
            Route("/health/ready", ready, methods=["GET", "HEAD"]),
            Route("/metrics", scrape, methods=["GET"]),
            *resource_metadata_routes(settings, services.policies),
            *sse_routes,
            Mount("/", app=mcp_app),
        ],
        middleware=[
            Middleware(
                ObserveMiddleware,
                metrics=services.metrics,
                access_log=settings.access_log,
                log_quiet_routes=settings.access_log_health,
                http_spans=settings.trace_http_spans,
            ),
            Middleware(
                GateMiddleware,
                lifecycle=services.lifecycle,
                retry_after_seconds=settings.retry_after_seconds,
                mcp_path=MCP_PATH,
                mcp_app=direct_mcp_app(mcp_app, MCP_PATH) or mcp_app,
                check_host=settings.dns_rebinding_protection,
                stateless=settings.stateless,
                streams=get_streams,
                sessions=sessions,
                keepalive=keepalive,
            ),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app
