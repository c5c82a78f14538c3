"""`wire`: one app's services connected to its metrics, access log and the process's tracing.

Observability depends on the services it observes, never the reverse: the app factory calls
`wire` once the services exist and hands the MCP observer it returns to the chain.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

from app import __version__
from app.health import overall
from app.observability import tracing
from app.observability.mcp_metrics import McpObserver
from app.observability.upstream import BreakerMetrics, UpstreamObserver
from app.services import Services


def wire(services: Services) -> McpObserver:
    """Connect one app's services to its metrics (and the process's tracing, configured once);
    the per-message observer for the request-scope stage is returned."""
    settings = services.settings
    metrics = services.metrics
    tracing.configure_tracing(
        __version__, redis_commands=settings.trace_redis_commands, sample_ratio=settings.trace_sample_ratio
    )
    observer = McpObserver(
        metrics,
        services.policies,
        access_log=settings.mcp_access_log,
        access_log_level=settings.mcp_access_log_level,
        principal_cap=settings.metrics_principal_cap if settings.metrics_per_principal else 0,
    )
    services.upstream_observer = UpstreamObserver(metrics, BreakerMetrics(metrics, services.breakers))

    lifecycle = services.lifecycle
    health = services.health

    async def probe() -> tuple[bool, dict[str, bool]]:
        if not lifecycle.ready:
            return False, {}
        checks = await health.run()
        dependencies = {str(check["name"]): check["status"] == "healthy" for check in checks}
        return overall(checks) != "unhealthy", dependencies

    metrics.set_health_probe(probe)

    if tracing.enabled():

        async def flush_at_shutdown(stack: AsyncExitStack) -> None:
            stack.callback(tracing.force_flush)

        services.on_startup(flush_at_shutdown)
    return observer
