"""Metrics, traces and the MCP access log, wired into one app by `wire` (called by `Services.create`).

- `app.metrics`: the instruments and ``/metrics`` (one registry per app, or multiprocess mode);
- `mcp_metrics`: per-MCP-message metrics, access-log line and span attributes (request-scope stage);
- `upstream`: upstream attempts and circuit breakers;
- `backend`: Redis operation latency and errors;
- `tracing`: the OpenTelemetry SDK from ``OTEL_*`` variables;
- `mcp_span`: the MCP server span of each message (in place of the SDK's span middleware);
- `otlp_encoding`: spans written as OTLP protobuf in one pass, for the library's exporter;
- `multiprocess`: the shared metrics directory of a multi-worker run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.services import Services

__all__ = ["wire"]


def wire(services: Services) -> None:
    """Connect one app's services to its metrics (and the process's tracing, configured once).

    Imported lazily: `app.log` imports `tracing` from this package, and the wiring imports half the app.
    """
    from app.observability.wiring import wire as wire_services

    wire_services(services)
