"""The MCP server span of each message, in place of the SDK's `OpenTelemetryMiddleware`.

The same span the SDK makes: named ``{method} {tool or prompt}``, kind SERVER, instrumentation
scope ``mcp-python-sdk``, the ``mcp.method.name``, ``mcp.protocol.version``, ``jsonrpc.request.id``
and ``gen_ai.*`` attributes, a ``traceparent`` in ``_meta`` as its parent (else the ambient
context), and the SDK's error marking (``error.type`` and an ERROR status for JSON-RPC errors,
invalid params, crashes and tool-error results). The request-scope stage adds our decisions to it
(`app.observability.mcp_metrics.annotate_span`).

Why not the SDK's own: it is the costliest step of a traced call, and not free untraced. It asks
the global tracer for a span even when no tracer provider is installed (a no-op span, a context
attach and detach, two context managers) and runs the propagators over every ``_meta``: about 55
Python calls per message for nothing. Traced, it nests three context managers around the span.
This one does nothing until a tracer provider is installed, reads ``_meta`` only when it holds a
``traceparent``, and attaches the span itself: 52-54 calls fewer per message either way
(docs/performance.md). The SDK documents removing its middleware from `Server.middleware` as the
way to opt out; `install` puts this one at its place, so the order of the chain is unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import ProxyTracerProvider, SpanKind, StatusCode
from pydantic import ValidationError

logger = logging.getLogger(__name__)

# The SDK's instrumentation scope: the spans stay the SDK's spans for whoever queries by scope.
SDK_TRACER_SCOPE = "mcp-python-sdk"
_SDK_MIDDLEWARE = "OpenTelemetryMiddleware"


class McpSpanMiddleware:
    def __init__(self) -> None:
        self._provider: object = None
        self._tracer: trace.Tracer | None = None

    def _current_tracer(self) -> trace.Tracer | None:
        """The scope's tracer of the installed provider; None while none is (the API's default proxy)."""
        provider = trace.get_tracer_provider()
        if provider is not self._provider:
            self._provider = provider
            self._tracer = None if isinstance(provider, ProxyTracerProvider) else provider.get_tracer(SDK_TRACER_SCOPE)
        return self._tracer

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        tracer = self._current_tracer()
        if tracer is None:
            return await call_next(ctx)
        method = ctx.method
        params = ctx.params
        name = params.get("name") if params else None
        target = name if isinstance(name, str) else None
        attributes: dict[str, Any] = {"mcp.method.name": method, "mcp.protocol.version": ctx.protocol_version}
        if ctx.request_id is not None:
            attributes["jsonrpc.request.id"] = str(ctx.request_id)
        if method == "tools/call":
            attributes["gen_ai.operation.name"] = "execute_tool"
            if target is not None:
                attributes["gen_ai.tool.name"] = target
        elif method == "prompts/get" and target is not None:
            attributes["gen_ai.prompt.name"] = target
        span = tracer.start_span(
            f"{method} {target}" if target else method,
            context=meta_parent(ctx.meta),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            result = await call_next(ctx)
            if method == "tools/call" and _is_tool_error(result):
                span.set_attribute("error.type", "tool_error")
                span.set_status(StatusCode.ERROR)
            return result
        except MCPError as exc:
            code = str(exc.error.code)
            span.set_attributes({"error.type": code, "rpc.response.status_code": code})
            span.set_status(StatusCode.ERROR, exc.error.message)
            raise
        except ValidationError:
            # The SDK's sanitized wire answer; pydantic's text would carry the client's input.
            code = str(INVALID_PARAMS)
            span.set_attributes({"error.type": code, "rpc.response.status_code": code})
            span.set_status(StatusCode.ERROR, "Invalid request parameters")
            raise
        except Exception as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, str(exc))
            raise
        finally:
            otel_context.detach(token)
            span.end()


def meta_parent(meta: Mapping[str, Any] | None) -> otel_context.Context | None:
    """The context of a valid ``traceparent`` in ``_meta``, else None (the span joins the ambient one)."""
    if not meta or "traceparent" not in meta:
        return None
    try:
        parent = propagate.extract(meta)
    except (ValueError, TypeError):
        return None
    return parent if trace.get_current_span(parent).get_span_context().is_valid else None


def _is_tool_error(result: HandlerResult) -> bool:
    """The shapes that reach the wire as an error result (the SDK's rule: the model, or a literal bool)."""
    if isinstance(result, CallToolResult):
        return result.is_error is True
    return isinstance(result, dict) and result.get("isError") is True


def install(middleware: list[ServerMiddleware[Any]]) -> bool:
    """Put `McpSpanMiddleware` where the SDK's span middleware is; False (and the SDK's kept) if absent."""
    for index, stage in enumerate(middleware):
        if type(stage).__name__ == _SDK_MIDDLEWARE and type(stage).__module__.startswith("mcp."):
            middleware[index] = McpSpanMiddleware()
            return True
    logger.warning("the SDK's %s was not found: its spans are kept as they are", _SDK_MIDDLEWARE)
    return False
