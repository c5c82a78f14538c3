"""Request ids, trace context, HTTP metrics and the access line, in one pass over each request.

Each request gets its call context (`app.call`) here: the request id (from ``X-Request-Id`` when
a proxy set a sane one, else minted; echoed on the response), the HTTP-level span context and
whether this edge writes the access line. It is stored on ``scope["state"]`` (the MCP stages
find it there) and bound to the contextvar for log lines made in this task. After the app
returns, the edge reads back what the MCP stages recorded: a refusal's HTTP status and headers
(``Retry-After``, ``RateLimit-*``, a step-up's ``WWW-Authenticate``; `app.http.refusals`, which also
holds a POST's SSE start until its first event so the status can still be set) and the MCP access line.

While tracing is on (`app.observability.tracing`), the W3C ``traceparent`` (and ``tracestate``,
``baggage``) of the request headers is made the current context, so the SDK's per-message MCP
span continues the caller's trace, unless the message carries its own ``traceparent`` in
``_meta``: then that one is the MCP span's parent (the MCP semantic conventions' rule) and the
header's span is linked instead. With ``MCPS_TRACE_HTTP_SPANS`` each request also gets an HTTP
SERVER span of its own (the MCP span's parent); off by default, because a span costs CPU
(creation plus export; docs/performance.md) and the MCP span already covers the call. Probes and
``/metrics`` are not traced (instrumentation is suppressed for them, so their Redis pings make no
spans either). With tracing off none of this runs.

One access line per request: for ``/mcp`` the MCP message served within leaves its line on the
call context, and the edge adds the HTTP fields and writes it on the MCP access logger; other
requests (and ``/mcp`` requests that carried no MCP request: refusals, notifications, streams)
get the HTTP line.
"""

from __future__ import annotations

import logging
import time
from contextvars import Token

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.call import STATE_KEY, CallContext, bind, unbind
from app.http.refusals import SseStartHold, answer_start
from app.log import access_fields
from app.metrics import Metrics, route_label
from app.observability import tracing
from app.observability.children import Children
from app.request_ids import REQUEST_ID_HEADER, accept_request_id

mcp_access_logger = logging.getLogger("mcp_service.mcp")
access_logger = logging.getLogger("mcp_service.access")
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_QUIET_ROUTES = frozenset({"/health/live", "/health/ready", "/metrics"})
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PROPAGATION_HEADERS = {b"traceparent": "traceparent", b"tracestate": "tracestate", b"baggage": "baggage"}


class ObserveMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, *, access_log: bool, log_quiet_routes: bool, http_spans: bool = False
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.log_quiet_routes = log_quiet_routes
        self.http_spans = http_spans
        self._requests = Children(metrics.http_requests)
        self._durations = Children(metrics.http_duration)

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
        route = route_label(scope["path"])
        log_line = self.access_log and (self.log_quiet_routes or route not in _QUIET_ROUTES)
        call = CallContext(request_id=request_id, edge_logs=log_line and route == "/mcp")
        scope.setdefault("state", {})[STATE_KEY] = call
        token = bind(call)
        method: str = scope["method"] if scope["method"] in _HTTP_METHODS else "_OTHER"
        status = 500
        started = time.perf_counter()
        header = (_REQUEST_ID_HEADER_BYTES, request_id.encode())

        span = None
        context_token = None
        tracer = tracing.active_tracer()
        if tracer is not None:
            span, context_token = self._trace(tracer, route, method, scope, call, carrier)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
                message = answer_start(message, call)  # what the guards recorded: status, retry, limits
                status = message["status"]
            await send(message)

        # A POST's SSE answer starts before its message is served: hold its start until the first event.
        app_send: Send = SseStartHold(send_with_id, call) if route == "/mcp" and method == "POST" else send_with_id

        metrics = self.metrics
        metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, app_send)
        finally:
            elapsed = time.perf_counter() - started
            metrics.http_in_flight.dec()
            self._requests.get(route, method, str(status)).inc()
            self._durations.get(route).observe(elapsed)
            if log_line:
                _log(scope, call, method, route, status, elapsed)
            if context_token is not None:
                otel_context.detach(context_token)
            if span is not None:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_attribute("error.type", str(status))
                    span.set_status(StatusCode.ERROR)
                span.end()
            unbind(token)

    def _trace(
        self,
        tracer: trace.Tracer,
        route: str,
        method: str,
        scope: Scope,
        call: CallContext,
        carrier: dict[str, str] | None,
    ) -> tuple[trace.Span | None, Token[otel_context.Context] | None]:
        """The HTTP span (if configured) or just the caller's context, made current for the app."""
        if route in _QUIET_ROUTES:
            # Probes and scrapes every few seconds are not worth a trace, nor are their Redis pings.
            return None, otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        parent = propagate.extract(carrier) if carrier else None
        if not self.http_spans:
            if parent is None:
                return None, None
            # No span of our own: the SDK's MCP span continues the caller's trace (and links it when
            # a `_meta` traceparent takes precedence).
            remote = trace.get_current_span(parent).get_span_context()
            if remote.is_valid:
                call.http_span = remote
            return None, otel_context.attach(parent)
        span = tracer.start_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.scheme": scope.get("scheme", "http"),
                "network.protocol.version": scope.get("http_version", "1.1"),
                "mcp_service.request_id": call.request_id or "",
            },
        )
        call.http_span = span.get_span_context()
        return span, otel_context.attach(trace.set_span_in_context(span, parent))


def _log(scope: Scope, call: CallContext, method: str, route: str, status: int, elapsed: float) -> None:
    """One line per request: the MCP message's line with the HTTP fields added, or the HTTP line alone."""
    client = (scope.get("client") or ("-",))[0]
    line = call.log_line
    if line is not None:
        level, message, fields = line
        fields["http_method"] = method
        fields["path"] = route
        fields["status"] = status
        fields["http_duration_ms"] = round(elapsed * 1000, 3)
        fields["client"] = client
        mcp_access_logger.log(level, "%s", message, extra=access_fields(fields))
        return
    fields = {
        "http_method": method,
        "path": route,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "client": client,
    }
    access_logger.info("%s %s %d", method, route, status, extra=access_fields(fields))
