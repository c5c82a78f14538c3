"""`create_app(settings)`: the whole service as one Starlette app.

    /health/live, /health/ready, /metrics   (ours, no auth)
    /mcp                                     (the SDK's streamable-HTTP transport, mounted)

Wrapped, outermost first, by `ObserveMiddleware` (request id, metrics, access log) and
`GateMiddleware` (shutdown gating). The lifespan opens pools, then runs the SDK's session
manager, and marks the process ready; shutdown unwinds in reverse.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from app.auth.metadata import resource_metadata_routes
from app.health import health_endpoints
from app.http.bearer import protect
from app.http.gate import GateMiddleware
from app.http.mcp_route import direct_mcp_app
from app.http.observe import ObserveMiddleware
from app.http.streams import OpenStreams
from app.log import configure_logging
from app.metrics import Metrics
from app.observability.backend import RedisOperationMetrics
from app.observability.wiring import wire
from app.packs import PackSource
from app.sdk_gaps import close_listen_streams
from app.services import Services
from app.settings import Settings
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
    server = build_mcp_server(services, observer, packs)
    mcp_app, session_manager = build_mcp_app(server, settings)
    close_listens = close_listen_streams(server)
    if close_listens is not None:
        services.lifecycle.on_stop(close_listens)  # listen streams end with their final result
    get_streams = None if settings.stateless else OpenStreams()
    if get_streams is not None:
        services.lifecycle.on_stop(get_streams.close_all)
    live, ready = health_endpoints(services.lifecycle, services.health)
    scrape = protect(metrics.endpoint, settings.metrics_token)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await services.open(stack)
            await stack.enter_async_context(session_manager.run())
            services.lifecycle.mark_ready()
            yield

    app = Starlette(
        routes=[
            Route("/health/live", live, methods=["GET", "HEAD"]),
            Route("/health/ready", ready, methods=["GET", "HEAD"]),
            Route("/metrics", scrape, methods=["GET"]),
            *resource_metadata_routes(settings, services.policies),
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
            ),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app
