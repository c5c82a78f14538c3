"""OpenTelemetry tracing, configured from the standard ``OTEL_*`` environment variables.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (and
``OTEL_SDK_DISABLED`` is not true): then no tracer provider is installed, the SDK's per-message
spans stay the API's no-op spans, and the edge makes none of its own. When on:

- OTLP over HTTP/protobuf to that endpoint, by the library's exporter (``OTEL_EXPORTER_OTLP_*``
  headers, timeout, compression, certificates are read by the exporter itself; ``OTEL_BSP_*`` by
  the batch processor);
- resource: ``service.name`` (``mcp-service`` unless ``OTEL_SERVICE_NAME`` or
  ``OTEL_RESOURCE_ATTRIBUTES`` names one), ``service.version``, ``service.instance.id`` (one per
  process: each worker is an instance), plus whatever ``OTEL_RESOURCE_ATTRIBUTES`` adds;
- sampling at the head, parent-based: a caller's sampled ``traceparent`` (header or ``_meta``) is
  always honoured, an unsampled one never recorded, and a root trace is recorded with probability
  ``MCPS_TRACE_SAMPLE_RATIO`` (OpenTelemetry's ``ParentBased(TraceIdRatioBased(ratio))``). Recording
  every call is not a production setting at volume: a recorded span costs several times what an
  unsampled one does (docs/performance.md). The standard ``OTEL_TRACES_SAMPLER`` (and ``_ARG``),
  when set, replaces it: the SDK then builds the sampler those variables name;
- with ``MCPS_TRACE_REDIS_COMMANDS``, Redis commands as client spans (opentelemetry-instrumentation-redis;
  arguments sanitized to ``?``), each marked with the backend operation that issued it. Off by
  default: the MCP span already carries the rate-limit and cache decisions, and each span costs CPU
  on every call (docs/performance.md).

Process-wide by nature (the tracer provider is a global): configured once per process, whatever
number of apps the process builds.
"""

from __future__ import annotations

import logging
import os
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "mcp-service"
DEFAULT_SAMPLE_RATIO = 0.1  # the setting's default (app.settings.observability); why: docs/operations.md
TRACER_NAME = "mcp-service"
SUPPORTED_PROTOCOL = "http/protobuf"

_TRUE = frozenset({"true", "1", "yes", "on"})

# The backend operation (``cache get``, ``acquire``...) in progress, for the Redis command spans.
backend_operation: ContextVar[str | None] = ContextVar("backend_operation", default=None)


class _State:
    configured = False
    provider: TracerProvider | None = None
    redis_commands = False
    tracer: trace.Tracer | None = None


_state = _State()


def tracing_requested(env: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """Whether the environment asks for traces: an OTLP endpoint is set and the SDK is not disabled."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def enabled() -> bool:
    """True once this process exports traces (cheap: read on every request and log line)."""
    return _state.tracer is not None


def redis_commands_traced() -> bool:
    """True when Redis commands get spans (then they are named after the backend operation)."""
    return _state.redis_commands


def active_tracer() -> trace.Tracer | None:
    """The service's own tracer when tracing is on, else None (callers then make no spans at all)."""
    return _state.tracer


def configure_tracing(
    service_version: str, *, redis_commands: bool = False, sample_ratio: float = DEFAULT_SAMPLE_RATIO
) -> TracerProvider | None:
    """Install the SDK tracer provider once per process, if the environment asks for it; else None.

    ``sample_ratio`` is the share of root traces recorded (see the module docstring);
    ``redis_commands`` adds a client span per Redis command. Both are process-wide, so the first
    app's settings hold for the process.
    """
    if _state.configured:
        return _state.provider
    _state.configured = True
    if not tracing_requested():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    ).strip()
    if protocol and protocol != SUPPORTED_PROTOCOL:
        logger.warning(
            "OTLP protocol %r is not supported by this build; exporting traces over %s instead",
            protocol[:32],
            SUPPORTED_PROTOCOL,
        )
    sampler = _sampler(sample_ratio)
    provider = TracerProvider(resource=_resource(service_version), sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    if redis_commands:
        _instrument_redis(provider)
        _state.redis_commands = True
    _state.provider = provider
    _state.tracer = provider.get_tracer(TRACER_NAME, service_version)
    logger.info(
        "tracing on: OTLP/HTTP to %s, sampler %s",
        _safe_endpoint(
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        ),
        provider.sampler.get_description(),
    )
    return provider


def _sampler(ratio: float) -> Sampler | None:
    """Parent-based head sampling at ``ratio`` for root traces; None (the SDK reads the standard
    variables) when ``OTEL_TRACES_SAMPLER`` names a sampler, so the OpenTelemetry way still works."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    return ParentBased(TraceIdRatioBased(ratio))


def force_flush(timeout_millis: int = 5000) -> None:
    """Export what is buffered (app shutdown; the provider also flushes at interpreter exit)."""
    if _state.provider is not None:
        _state.provider.force_flush(timeout_millis)


def _resource(service_version: str) -> Resource:
    """Our defaults, overridden by whatever ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` say
    (the SDK's own detector reads them; `Resource.create` would fill ``unknown_service`` first)."""
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    defaults = Resource(
        {
            "service.name": DEFAULT_SERVICE_NAME,
            "service.version": service_version,
            "service.instance.id": str(uuid.uuid4()),
        }
    )
    return defaults.merge(OTELResourceDetector().detect())


def _safe_endpoint(url: str) -> str:
    """The endpoint without credentials or query (it is logged)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else "(unparsable endpoint)"


def _instrument_redis(provider: TracerProvider) -> None:
    try:
        from opentelemetry.instrumentation.redis import RedisInstrumentor
    except ImportError:  # pragma: no cover - a declared dependency
        logger.warning("opentelemetry-instrumentation-redis is not installed: no Redis command spans")
        return
    instrumentor = RedisInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider, request_hook=_redis_request_hook)


def _redis_request_hook(span: trace.Span, instance: Any, args: Any, kwargs: Any) -> None:
    operation = backend_operation.get()
    if operation is not None and span.is_recording():
        span.set_attribute("mcp_service.backend.operation", operation)
