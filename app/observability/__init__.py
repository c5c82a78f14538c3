"""Metrics, traces and the MCP access log, connected to one app by `wiring.wire` (the app factory calls it).

- `app.metrics`: the instruments and ``/metrics`` (one registry per app, or multiprocess mode);
- `mcp_metrics`: per-MCP-message metrics, access-log line and span attributes (request-scope stage);
- `upstream`: upstream attempts and circuit breakers;
- `backend`: Redis operation latency and errors;
- `tracing`: the OpenTelemetry SDK from ``OTEL_*`` variables, head-sampled at ``MCPS_TRACE_SAMPLE_RATIO``;
- `mcp_span`: the MCP server span of each message (in place of the SDK's span middleware);
- `multiprocess`: the shared metrics directory of a multi-worker run.
"""
