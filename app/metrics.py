"""Prometheus metrics of one app instance, in a registry of its own (tests build many apps per process).

Labels are bounded by construction: routes are a fixed set, never raw paths, principals or arguments.
"""

from __future__ import annotations

from importlib.metadata import version

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from app import __version__

KNOWN_ROUTES = frozenset({"/mcp", "/health/live", "/health/ready", "/metrics", "/.well-known/oauth-protected-resource"})

# An API whose p50 is a few milliseconds: fine buckets low, a few for the slow tail.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def route_label(path: str) -> str:
    if path in KNOWN_ROUTES:
        return path
    if path == "/mcp/":
        return "/mcp"
    if path.startswith("/.well-known/oauth-protected-resource"):
        return "/.well-known/oauth-protected-resource"
    return "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.build_info = Info("mcp_service_build", "Build of the running service.", registry=self.registry)
        self.build_info.info({"version": __version__, "mcp_sdk_version": version("mcp")})
        self.http_requests = Counter(
            "mcp_service_http_requests",
            "HTTP requests answered, by route, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "mcp_service_http_request_duration_seconds",
            "Time to the end of the HTTP response, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.http_in_flight = Gauge(
            "mcp_service_http_requests_in_flight", "HTTP requests being served now.", registry=self.registry
        )

    async def endpoint(self, _: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)
