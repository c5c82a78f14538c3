"""Prometheus metrics of one app instance: every instrument the service exports, and ``/metrics``.

One process (the default): a registry of its own per app (tests build many apps per process).
Several workers (``MCPS_WORKERS`` > 1): prometheus-client's multiprocess mode. The runner points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before any worker starts; every worker writes
its samples there and ``/metrics``, whichever worker answers it, aggregates the whole group with
a `MultiProcessCollector` (counters and histograms summed over live and dead workers, gauges as
each declares). docs/operations.md lists every metric.

Labels are bounded by construction: routes are a fixed set, never raw paths; tool names are the
registered ones or ``other``; principal ids only when ``MCPS_METRICS_PER_PRINCIPAL`` is on, capped;
never arguments, URLs or error messages.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from importlib.metadata import version

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from app import __version__

KNOWN_ROUTES = frozenset(
    {"/mcp", "/sse", "/health/live", "/health/ready", "/metrics", "/.well-known/oauth-protected-resource"}
)

# An API whose p50 is a few milliseconds: fine buckets low, a few for the slow tail.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# MCP operations: the same low end; tool calls may run for minutes (their timeout is up to an hour).
MCP_BUCKETS = (*LATENCY_BUCKETS, 60.0, 120.0, 300.0)
# Redis round trips: sub-millisecond when healthy; the top buckets catch timeouts (default 0.25 s).
BACKEND_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# Third-party HTTP APIs: tens to hundreds of milliseconds, bounded by the upstream total timeout.
UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# No ``*_created`` series: they double the exposition, multiprocess mode cannot produce them, and
# Prometheus does not need them (it sees resets). Process-wide, like the client's own setting.
disable_created_metrics()  # type: ignore[no-untyped-call]

HealthProbe = Callable[[], Awaitable[tuple[bool, dict[str, bool]]]]


def route_label(path: str) -> str:
    if path in KNOWN_ROUTES:
        return path
    if path == "/mcp/":
        return "/mcp"
    if path.startswith("/messages/"):  # HTTP+SSE posts, whatever replica id the path names
        return "/messages/"
    if path.startswith("/.well-known/oauth-protected-resource"):
        return "/.well-known/oauth-protected-resource"
    return "other"


def multiprocess_dir() -> str | None:
    """The multiprocess directory when this process writes its samples there (set by the runner)."""
    return os.environ.get(MULTIPROC_ENV) or None


class _ScrapeTimeCollector(Collector):
    """Values computed when scraped, by the process that answers: build, readiness, dependencies."""

    def __init__(self) -> None:
        self.ready = 0.0
        self.dependencies: dict[str, bool] = {}
        self._build = {"version": __version__, "mcp_sdk_version": version("mcp")}

    def collect(self) -> Iterable[Metric]:
        build = InfoMetricFamily("mcp_service_build", "Build of the running service.")
        build.add_metric([], self._build)
        yield build
        yield GaugeMetricFamily(
            "mcp_service_ready",
            "1 when this replica takes traffic (serving phase ready and no required dependency unhealthy), else 0.",
            value=self.ready,
        )
        deps = GaugeMetricFamily(
            "mcp_service_dependency_healthy",
            "1 when the dependency's readiness check says healthy, 0 when degraded or unhealthy.",
            labels=["dependency"],
        )
        for name, healthy in sorted(self.dependencies.items()):
            deps.add_metric([name], 1.0 if healthy else 0.0)
        yield deps


class Metrics:
    """Every instrument of the service. ``per_principal_cap`` > 0 adds the per-principal counter."""

    def __init__(self, *, per_principal_cap: int = 0, multiprocess: bool | None = None) -> None:
        self.multiprocess = multiprocess_dir() is not None if multiprocess is None else multiprocess
        self.registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode the samples live in the shared directory, not in a registry.
        registry = None if self.multiprocess else self.registry
        self._scrape_time = _ScrapeTimeCollector()
        self.registry.register(self._scrape_time)
        self._health_probe: HealthProbe | None = None

        # --- HTTP edge ---------------------------------------------------------------------
        self.http_requests = Counter(
            "mcp_service_http_requests",
            "HTTP requests answered, by route, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "mcp_service_http_request_duration_seconds",
            "Time to the end of the HTTP response, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.http_in_flight = Gauge(
            "mcp_service_http_requests_in_flight",
            "HTTP requests being served now.",
            registry=registry,
            multiprocess_mode="livesum",
        )

        # --- MCP messages (OpenTelemetry MCP semantic conventions' names) --------------------
        self.mcp_duration = Histogram(
            "mcp_server_operation_duration_seconds",
            "MCP request duration as observed by the server (semconv mcp.server.operation.duration), by method, "
            "tool (registered names, 'other' for unknown ones, empty for non-tool methods) and outcome.",
            ["mcp_method_name", "gen_ai_tool_name", "outcome"],
            buckets=MCP_BUCKETS,
            registry=registry,
        )
        self.mcp_in_flight = Gauge(
            "mcp_service_mcp_requests_in_flight",
            "MCP requests being handled now, by method.",
            ["mcp_method_name"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.rate_limit_decisions = Counter(
            "mcp_service_rate_limit_decisions",
            "Rate-limit decisions: decision allowed|limited; source redis|memory (the shared or embedded store) "
            "or local|allow|deny (the fallback policy while Redis is unreachable).",
            ["decision", "source"],
            registry=registry,
        )
        self.cache_requests = Counter(
            "mcp_service_cache_requests",
            "Result-cache lookups of cacheable tools: result hit|miss|coalesced (joined an identical call in flight).",
            ["gen_ai_tool_name", "result"],
            registry=registry,
        )
        self.idempotency_requests = Counter(
            "mcp_service_idempotency_requests",
            "Idempotency-keyed write calls: result new|replay|conflict|in_progress.",
            ["gen_ai_tool_name", "result"],
            registry=registry,
        )
        self.principal_requests: Counter | None = None
        if per_principal_cap > 0:
            self.principal_requests = Counter(
                "mcp_service_principal_requests",
                f"MCP requests per principal id (the first {per_principal_cap} ids seen by a worker; the rest "
                "as 'other'), by outcome.",
                ["principal", "outcome"],
                registry=registry,
            )

        # --- long-running tools as tasks (app.longrun) -----------------------------------------
        self.tasks_created = Counter(
            "mcp_service_task_creations",
            "Tasks created (tools/call answered with a task to poll), by tool.",
            ["gen_ai_tool_name"],
            registry=registry,
        )
        self.tasks_ended = Counter(
            "mcp_service_tasks_ended",
            "Task runs ended on this replica, by tool and how: completed, failed, cancelled, handed_back (at "
            "shutdown, for another replica), lost (its lease taken over), orphan_failed (a dead replica's task "
            "not safe to re-run).",
            ["gen_ai_tool_name", "status"],
            registry=registry,
        )
        self.task_run_duration = Histogram(
            "mcp_service_task_run_duration_seconds",
            "How long each task run took on this replica, by tool and how it ended.",
            ["gen_ai_tool_name", "status"],
            buckets=(*MCP_BUCKETS, 600.0, 1800.0, 3600.0),
            registry=registry,
        )
        self.tasks_running = Gauge(
            "mcp_service_tasks_running",
            "Tasks running on this replica now.",
            registry=registry,
            multiprocess_mode="livesum",
        )

        # --- third-party HTTP APIs -------------------------------------------------------------
        self.upstream_duration = Histogram(
            "mcp_service_upstream_request_duration_seconds",
            "Duration of each attempt at an upstream API, by upstream, HTTP method and outcome (status class "
            "2xx..5xx or an error kind: timeout, connect_error, network_error, protocol_error, too_large, "
            "cancelled, error).",
            ["upstream", "method", "outcome"],
            buckets=UPSTREAM_BUCKETS,
            registry=registry,
        )
        self.upstream_requests = Counter(
            "mcp_service_upstream_requests",
            "Attempts at an upstream API, by upstream, HTTP method and status (the HTTP status code, an error "
            "kind, or breaker_open when the circuit breaker failed the attempt fast without sending it).",
            ["upstream", "method", "status"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "mcp_service_circuit_breaker_state",
            "1 for the current state of each upstream's circuit breaker (closed, open, half_open), else 0. "
            "Several workers: the highest over live workers (open=1 if any worker's breaker is open).",
            ["upstream", "state"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.breaker_transitions = Counter(
            "mcp_service_circuit_breaker_transitions",
            "Circuit-breaker state changes, by upstream and from/to state.",
            ["upstream", "from_state", "to_state"],
            registry=registry,
        )

        # --- shared-state backend (Redis) -----------------------------------------------------
        self.backend_duration = Histogram(
            "mcp_service_backend_command_duration_seconds",
            "Duration of each backend operation (one Redis round trip: a Lua script, a read, a pipeline, a ping), "
            "failures included.",
            ["backend", "operation"],
            buckets=BACKEND_BUCKETS,
            registry=registry,
        )
        self.backend_errors = Counter(
            "mcp_service_backend_errors",
            "Backend operations that failed, by error class (ConnectionError, TimeoutError, ...).",
            ["backend", "operation", "error"],
            registry=registry,
        )

    # --- scrape --------------------------------------------------------------------------------

    def set_health_probe(self, probe: HealthProbe) -> None:
        """``probe()`` -> (ready, {dependency: healthy}); run at each scrape for the readiness gauges."""
        self._health_probe = probe

    async def endpoint(self, _: Request) -> Response:
        if self._health_probe is not None:
            ready, dependencies = await self._health_probe()
            self._scrape_time.ready = 1.0 if ready else 0.0
            self._scrape_time.dependencies = dependencies
        return Response(generate_latest(self.exposition_registry()), media_type=CONTENT_TYPE_LATEST)

    def exposition_registry(self) -> CollectorRegistry:
        """What ``/metrics`` shows: this app's registry, or the whole worker group's in multiprocess mode."""
        if not self.multiprocess:
            return self.registry
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(self._scrape_time)
        return registry
