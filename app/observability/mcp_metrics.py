"""What each MCP message leaves behind: metrics, the MCP access-log line and span attributes.

`McpObserver` is given to the request-scope stage (`app.middleware.request_scope`), which calls it
at the start and the end of every message with the message's call context (`app.call`), where
the guard stages recorded their decisions and the error boundary the outcome.

Hot path: label children come from `app.observability.children` (no re-validation per
request), span work only happens while tracing is on, and the access-log line
only when its logger is enabled at the configured level.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace

from app.call import CallContext
from app.log import access_fields, current_ids, redact
from app.metrics import Metrics
from app.observability import tracing
from app.observability.children import Children
from app.policy import Policies

access_logger = logging.getLogger("mcp_service.mcp")

OTHER = "other"

# mcp.method.name values (the semconv list plus the 2026-07-28 era and tasks); anything else is "other".
KNOWN_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "subscriptions/listen",
        "logging/setLevel",
        "completion/complete",
        "tasks/get",
        "tasks/result",
        "tasks/list",
        "tasks/cancel",
    }
)

_LOG_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING}
_MAX_LOGGED_NAME = 128


class McpObserver:
    def __init__(
        self,
        metrics: Metrics,
        policies: Policies,
        *,
        access_log: bool = True,
        access_log_level: str = "INFO",
        principal_cap: int = 0,
    ) -> None:
        self.metrics = metrics
        self.policies = policies
        self.access_log = access_log
        self.access_log_level = _LOG_LEVELS.get(access_log_level, logging.INFO)
        self.principal_cap = principal_cap if metrics.principal_requests is not None else 0
        self._principals: set[str] = set()
        self._in_flight = Children(metrics.mcp_in_flight)
        self._durations = Children(metrics.mcp_duration)
        self._rate_limits = Children(metrics.rate_limit_decisions)
        self._cache = Children(metrics.cache_requests)
        self._idempotency = Children(metrics.idempotency_requests)
        self._per_principal = Children(metrics.principal_requests) if metrics.principal_requests is not None else None

    # --- labels --------------------------------------------------------------------------------

    @staticmethod
    def method_label(method: str | None) -> str:
        return method if method in KNOWN_METHODS else OTHER

    def tool_label(self, tool: str | None) -> str:
        """Registered tool names only: an unknown name (anyone can send one) must not mint a series."""
        if tool is None:
            return ""
        return tool if self.policies.is_declared_tool(tool) else OTHER

    def principal_label(self, principal: str) -> str:
        if principal in self._principals:
            return principal
        if len(self._principals) < self.principal_cap:
            self._principals.add(principal)
            return principal
        return OTHER

    # --- per message ---------------------------------------------------------------------------

    def in_flight(self, method: str) -> Any:
        return self._in_flight.get(self.method_label(method))

    def finish(self, call: CallContext) -> None:
        """Record one finished message: metrics, span attributes, the access-log line."""
        tool_label = self.tool_label(call.tool)
        outcome = call.outcome
        self._durations.get(self.method_label(call.method), tool_label, outcome).observe(call.elapsed_seconds)
        if call.rate_limit is not None:
            self._rate_limits.get(call.rate_limit, call.rate_limit_source or "unknown").inc()
        if call.cache is not None:
            self._cache.get(tool_label, call.cache).inc()
        if call.idempotency is not None:
            self._idempotency.get(tool_label, call.idempotency).inc()
        if self.principal_cap and self._per_principal is not None:
            self._per_principal.get(self.principal_label(principal_id(call)), outcome).inc()
        if tracing.enabled():
            annotate_span(call)
        if self.access_log and access_logger.isEnabledFor(self.access_log_level):
            self._log(call)

    def _log(self, call: CallContext) -> None:
        method = call.method or ""
        if method not in KNOWN_METHODS:
            method = redact(method[:_MAX_LOGGED_NAME])
        elapsed = call.elapsed_seconds
        fields: dict[str, Any] = {
            "mcp_method": method,
            "outcome": call.outcome,
            "duration_ms": round(elapsed * 1000, 3),
            "principal": principal_id(call),
        }
        tool = call.tool
        if tool is not None:
            # Anyone can send any name: only registered ones go out unfiltered (access lines skip redaction).
            fields["tool"] = tool = tool if self.policies.is_declared_tool(tool) else redact(tool[:_MAX_LOGGED_NAME])
        jsonrpc_id = call.jsonrpc_id
        if jsonrpc_id is not None:
            fields["jsonrpc_id"] = (
                str(jsonrpc_id) if isinstance(jsonrpc_id, int) else redact(str(jsonrpc_id)[:_MAX_LOGGED_NAME])
            )
        if call.error_code is not None:
            fields["error_code"] = call.error_code
        if call.rate_limit is not None:
            fields["rate_limit"] = call.rate_limit
            fields["rate_limit_source"] = call.rate_limit_source
        if call.cache is not None:
            fields["cache"] = call.cache
        if call.idempotency is not None:
            fields["idempotency"] = call.idempotency
        message = f"{method}{f' {tool}' if tool is not None else ''} {call.outcome} {elapsed * 1000:.1f}ms"
        if call.edge_logs:
            # The edge writes one line for the whole request, this message's fields included.
            ids = current_ids()
            if ids is not None:
                fields["trace_id"], fields["span_id"] = ids
            call.log_line = (self.access_log_level, message, fields)
            return
        access_logger.log(self.access_log_level, "%s", message, extra=access_fields(fields))


def principal_id(call: CallContext) -> str:
    """The caller's id as authorization decoded it (a refusal before authorization ran: unknown)."""
    return call.principal.id if call.principal is not None else "unauthenticated"


def annotate_span(call: CallContext) -> None:
    """Our decisions on the MCP span (the current one), and a link to the HTTP-level span if not its parent.

    The MCP span is parented on a ``traceparent`` in the request's ``_meta`` when there is one (the
    MCP semantic conventions' rule: the MCP client span is the parent whatever the transport),
    else on the ambient context: our HTTP span, or the header's traceparent. In the first case that
    HTTP-level span is linked.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes: dict[str, str] = {"mcp_service.outcome": call.outcome}
    if call.error_code is not None:
        attributes["mcp_service.error_code"] = call.error_code
    if call.rate_limit is not None:
        attributes["mcp_service.rate_limit.decision"] = call.rate_limit
        attributes["mcp_service.rate_limit.source"] = call.rate_limit_source or "unknown"
    if call.cache is not None:
        attributes["mcp_service.cache.result"] = call.cache
    if call.idempotency is not None:
        attributes["mcp_service.idempotency.result"] = call.idempotency
    if call.request_id is not None:
        attributes["mcp_service.request_id"] = call.request_id
    span.set_attributes(attributes)
    http_span = call.http_span
    if http_span is not None:
        parent = getattr(span, "parent", None)
        if parent is None or parent.span_id != http_span.span_id:
            span.add_link(http_span, {"mcp_service.link": "http_request"})
