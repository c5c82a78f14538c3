"""Request ids, the HTTP server span, HTTP metrics and the access log, in one pass over each request.

The request id comes from ``X-Request-Id`` when a proxy set a sane one, else it is minted; it is
echoed on the response, stored on ``scope["state"]`` (the MCP middleware re-binds it inside the
SDK's handler task) and set in the contextvar for log lines made in this task.

While tracing is on (`app.observability.tracing`), each request gets an HTTP SERVER span whose
parent is the W3C ``traceparent`` (and ``tracestate``, ``baggage``) of the request headers. It is
the current span while the app runs, so the SDK's per-message MCP span becomes its child, unless
the message carries its own ``traceparent`` in ``_meta``: then that one is the MCP span's parent
(the MCP semantic conventions' rule) and the HTTP span is linked to it instead. Its context is left
on ``scope["state"]`` for that link. Probes and ``/metrics`` are not traced (instrumentation is
suppressed for them, so their Redis pings make no spans either). With tracing off none of this runs.

For ``/mcp`` requests the edge also leaves the app's `McpObserver` on ``scope["state"]``: the
request-scope stage of the MCP chain finds it there.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import Metrics, route_label
from app.observability import tracing
from app.observability.mcp_metrics import HTTP_SPAN_STATE_KEY, OBSERVER_STATE_KEY
from app.request_context import REQUEST_ID_HEADER, accept_request_id, request_id_var

access_logger = logging.getLogger("mcp_service.access")
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_QUIET_ROUTES = frozenset({"/health/live", "/health/ready", "/metrics"})
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PROPAGATION_HEADERS = {b"traceparent": "traceparent", b"tracestate": "tracestate", b"baggage": "baggage"}


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, *, access_log: bool, log_quiet_routes: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.log_quiet_routes = log_quiet_routes
        self._children: dict[tuple[str, str, str], Any] = {}
        self._durations: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        carrier: dict[str, str] | None = None
        for key, value in scope["headers"]:
            if key == _REQUEST_ID_HEADER_BYTES:
                incoming = value.decode("latin-1")
            elif key in _PROPAGATION_HEADERS:
                if carrier is None:
                    carrier = {}
                carrier[_PROPAGATION_HEADERS[key]] = value.decode("latin-1")
        request_id = accept_request_id(incoming)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = request_id_var.set(request_id)
        route = route_label(scope["path"])
        if route == "/mcp" and self.metrics.mcp_observer is not None:
            state[OBSERVER_STATE_KEY] = self.metrics.mcp_observer
        method: str = scope["method"] if scope["method"] in _HTTP_METHODS else "_OTHER"
        status = 500
        started = time.perf_counter()
        header = (_REQUEST_ID_HEADER_BYTES, request_id.encode())

        span = None
        context_token = None
        tracer = tracing.active_tracer()
        if tracer is not None and route in _QUIET_ROUTES:
            # Probes and scrapes every few seconds are not worth a trace, nor are their Redis pings.
            context_token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        elif tracer is not None:
            parent = propagate.extract(carrier) if carrier else None
            span = tracer.start_span(
                f"{method} {route}",
                context=parent,
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": method,
                    "http.route": route,
                    "url.scheme": scope.get("scheme", "http"),
                    "network.protocol.version": scope.get("http_version", "1.1"),
                    "mcp_service.request_id": request_id,
                },
            )
            state[HTTP_SPAN_STATE_KEY] = span.get_span_context()
            context_token = otel_context.attach(trace.set_span_in_context(span, parent))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), header]
                retry_after = state.get("retry_after_seconds")  # left by the rate limiter
                if retry_after is not None:
                    headers.append((b"retry-after", str(retry_after).encode()))
                message["headers"] = headers
            await send(message)

        metrics = self.metrics
        metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            metrics.http_in_flight.dec()
            key = (route, method, str(status))
            counter = self._children.get(key)
            if counter is None:
                counter = self._children[key] = metrics.http_requests.labels(*key)
            counter.inc()
            histogram = self._durations.get(route)
            if histogram is None:
                histogram = self._durations[route] = metrics.http_duration.labels(route)
            histogram.observe(elapsed)
            if self.access_log and (self.log_quiet_routes or route not in _QUIET_ROUTES):
                access_logger.info(
                    "%s %s %d",
                    method,
                    route,
                    status,
                    extra={
                        "http_method": method,
                        "path": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "client": (scope.get("client") or ("-",))[0],
                    },
                )
            if context_token is not None:
                otel_context.detach(context_token)
            if span is not None:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_attribute("error.type", str(status))
                    span.set_status(StatusCode.ERROR)
                span.end()
            request_id_var.reset(token)
