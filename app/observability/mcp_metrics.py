"""What each MCP message leaves behind: metrics, the MCP access-log line and span attributes.

`McpObserver` is called by the request-scope stage (`app.middleware.request_scope`) at the start
and the end of every message, with the `CallRecord` the guard stages filled. It finds the
observer on the HTTP request's ``scope["state"]`` (the edge puts it there), so the chain needs
no wiring of its own.

Hot path: label children are looked up in small dicts keyed by label tuples (no string
formatting per request), span work only happens while tracing is on, and the access-log line
only when its logger is enabled at the configured level.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from opentelemetry import trace
from opentelemetry.trace import SpanContext

from app.log import access_fields, redact
from app.metrics import Metrics
from app.middleware.calls import CallRecord
from app.observability import tracing
from app.policy import Policies

OBSERVER_STATE_KEY = "mcp_observer"  # on the ASGI scope's state, set by the HTTP edge
# The request's HTTP-level span context, for linking: our HTTP span, or the caller's header traceparent.
HTTP_SPAN_STATE_KEY = "otel_http_span_context"
# Set to PENDING_LINE by the edge when it will write this request's access line: the MCP message
# served within leaves its `AccessLine` there instead of writing a line of its own.
ACCESS_LINE_STATE_KEY = "mcp_access_line"
PENDING_LINE = object()

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

OUTCOMES = ("ok", "tool_error", "rate_limited", "denied", "timeout", "error")

_LOG_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING}
_MAX_LOGGED_NAME = 128


class McpObserver:
    def __init__(
        self,
        metrics: Metrics,
        policies: Policies,
        *,
        auth_disabled: bool,
        access_log: bool = True,
        access_log_level: str = "INFO",
        principal_cap: int = 0,
    ) -> None:
        self.metrics = metrics
        self.policies = policies
        self.auth_disabled = auth_disabled
        self.access_log = access_log
        self.access_log_level = _LOG_LEVELS.get(access_log_level, logging.INFO)
        self.principal_cap = principal_cap if metrics.principal_requests is not None else 0
        self._principals: set[str] = set()
        self._in_flight: dict[str, Any] = {}
        self._durations: dict[tuple[str, str, str], Any] = {}
        self._rate_limits: dict[tuple[str, str], Any] = {}
        self._cache: dict[tuple[str, str], Any] = {}
        self._idempotency: dict[tuple[str, str], Any] = {}
        self._per_principal: dict[tuple[str, str], Any] = {}

    # --- labels --------------------------------------------------------------------------------

    @staticmethod
    def method_label(method: str) -> str:
        return method if method in KNOWN_METHODS else OTHER

    def tool_label(self, tool: str | None) -> str:
        """Registered tool names only: an unknown name (anyone can send one) must not mint a series."""
        if tool is None:
            return ""
        return tool if tool in self.policies.tools else OTHER

    def principal_label(self, principal: str) -> str:
        if principal in self._principals:
            return principal
        if len(self._principals) < self.principal_cap:
            self._principals.add(principal)
            return principal
        return OTHER

    # --- per message ---------------------------------------------------------------------------

    def in_flight(self, method_label: str) -> Any:
        child = self._in_flight.get(method_label)
        if child is None:
            child = self._in_flight[method_label] = self.metrics.mcp_in_flight.labels(method_label)
        return child

    def finish(
        self,
        ctx: Any,
        record: CallRecord,
        method_label: str,
        elapsed: float,
        state: dict[str, Any] | None,
    ) -> None:
        """Record one finished message: metrics, span attributes, the access-log line."""
        tool_label = self.tool_label(record.tool)
        outcome = record.outcome
        key = (method_label, tool_label, outcome)
        duration = self._durations.get(key)
        if duration is None:
            duration = self._durations[key] = self.metrics.mcp_duration.labels(*key)
        duration.observe(elapsed)
        if record.rate_limit is not None:
            rl_key = (record.rate_limit, record.rate_limit_source or "unknown")
            child = self._rate_limits.get(rl_key)
            if child is None:
                child = self._rate_limits[rl_key] = self.metrics.rate_limit_decisions.labels(*rl_key)
            child.inc()
        if record.cache is not None and record.cache != "bypass":
            cache_key = (tool_label, record.cache)
            child = self._cache.get(cache_key)
            if child is None:
                child = self._cache[cache_key] = self.metrics.cache_requests.labels(*cache_key)
            child.inc()
        if record.idempotency is not None:
            idem_key = (tool_label, record.idempotency)
            child = self._idempotency.get(idem_key)
            if child is None:
                child = self._idempotency[idem_key] = self.metrics.idempotency_requests.labels(*idem_key)
            child.inc()
        principal: str | None = None
        if self.principal_cap:
            principal = principal_id(ctx, self.auth_disabled)
            pr_key = (self.principal_label(principal), outcome)
            child = self._per_principal.get(pr_key)
            if child is None:
                assert self.metrics.principal_requests is not None
                child = self._per_principal[pr_key] = self.metrics.principal_requests.labels(*pr_key)
            child.inc()
        if tracing.enabled():
            annotate_span(record, state)
        if self.access_log and access_logger.isEnabledFor(self.access_log_level):
            if principal is None:
                principal = principal_id(ctx, self.auth_disabled)
            self._log(ctx, record, principal, elapsed, state)

    def _log(self, ctx: Any, record: CallRecord, principal: str, elapsed: float, state: dict[str, Any] | None) -> None:
        method: str = ctx.method
        if method not in KNOWN_METHODS:
            method = redact(method[:_MAX_LOGGED_NAME])
        fields: dict[str, Any] = {
            "mcp_method": method,
            "outcome": record.outcome,
            "duration_ms": round(elapsed * 1000, 3),
            "principal": principal,
        }
        tool = record.tool
        if tool is not None:
            # Anyone can send any name: only registered ones go out unfiltered (access lines skip redaction).
            fields["tool"] = tool = tool if tool in self.policies.tools else redact(tool[:_MAX_LOGGED_NAME])
        request_id = ctx.request_id
        if request_id is not None:
            fields["jsonrpc_id"] = (
                str(request_id) if isinstance(request_id, int) else redact(str(request_id)[:_MAX_LOGGED_NAME])
            )
        if record.error_code is not None:
            fields["error_code"] = record.error_code
        if record.rate_limit is not None:
            fields["rate_limit"] = record.rate_limit
            fields["rate_limit_source"] = record.rate_limit_source
        if record.cache is not None:
            fields["cache"] = record.cache
        if record.idempotency is not None:
            fields["idempotency"] = record.idempotency
        message = f"{method}{f' {tool}' if tool is not None else ''} {record.outcome} {elapsed * 1000:.1f}ms"
        if state is not None and state.get(ACCESS_LINE_STATE_KEY) is PENDING_LINE:
            # The edge writes one line for the whole request, this message's fields included.
            ids = tracing.current_ids()
            if ids is not None:
                fields["trace_id"], fields["span_id"] = ids
            state[ACCESS_LINE_STATE_KEY] = AccessLine(self.access_log_level, message, fields)
            return
        access_logger.log(self.access_log_level, "%s", message, extra=access_fields(fields))


class AccessLine(NamedTuple):
    """An MCP access line handed to the HTTP edge, which adds the HTTP fields and writes it."""

    level: int
    message: str
    fields: dict[str, Any]


def principal_id(ctx: Any, auth_disabled: bool) -> str:
    """The caller's id as the authorization stage sees it (it has unbound its principal by now)."""
    if auth_disabled:
        return "anonymous"
    request = ctx.request
    user = request.scope.get("user") if request is not None else None
    if isinstance(user, AuthenticatedUser):
        token = user.access_token
        claims = token.claims or {}
        return str(claims.get("principal") or token.subject or token.client_id)
    return "unauthenticated"


def annotate_span(record: CallRecord, state: dict[str, Any] | None) -> None:
    """Our decisions on the SDK's MCP span (the current one), and a link to the HTTP-level span if not its parent.

    The SDK parents its span on a ``traceparent`` in the request's ``_meta`` when there is one (the
    MCP semantic conventions' rule: the MCP client span is the parent whatever the transport),
    else on the ambient context: our HTTP span, or the header's traceparent. In the first case that
    HTTP-level span is linked.
    """
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes: dict[str, str] = {"mcp_service.outcome": record.outcome}
    if record.error_code is not None:
        attributes["mcp_service.error_code"] = record.error_code
    if record.rate_limit is not None:
        attributes["mcp_service.rate_limit.decision"] = record.rate_limit
        attributes["mcp_service.rate_limit.source"] = record.rate_limit_source or "unknown"
    if record.cache is not None:
        attributes["mcp_service.cache.result"] = record.cache
    if record.idempotency is not None:
        attributes["mcp_service.idempotency.result"] = record.idempotency
    if state is not None:
        request_id = state.get("request_id")
        if isinstance(request_id, str):
            attributes["mcp_service.request_id"] = request_id
    span.set_attributes(attributes)
    http_span = state.get(HTTP_SPAN_STATE_KEY) if state is not None else None
    if isinstance(http_span, SpanContext):
        parent = getattr(span, "parent", None)
        if parent is None or parent.span_id != http_span.span_id:
            span.add_link(http_span, {"mcp_service.link": "http_request"})
