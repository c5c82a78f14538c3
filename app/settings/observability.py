"""Metrics labels, the MCP access log and optional extra spans."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.settings.base import SettingsGroup


class ObservabilitySettings(SettingsGroup):
    """Metrics labels, the MCP access log and optional extra spans."""

    metrics_per_principal: bool = Field(
        False, description="Also count calls per principal id (a label; capped by MCPS_METRICS_PRINCIPAL_CAP)."
    )
    metrics_principal_cap: int = Field(
        100, ge=1, le=10_000, description="Distinct principal ids labelled before the rest count as 'other'."
    )
    mcp_access_log: bool = Field(True, description="One JSON line per MCP request (method, tool, principal, outcome).")
    mcp_access_log_level: Literal["DEBUG", "INFO", "WARNING"] = Field("INFO", description="Level of those lines.")
    trace_http_spans: bool = Field(
        False,
        description="While tracing (OTEL_EXPORTER_OTLP_ENDPOINT set): also an HTTP server span per request, parent "
        "of the MCP span (about 60 us of CPU each; the MCP span alone continues the caller's traceparent).",
    )
    trace_sample_ratio: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="While tracing: the share of root traces recorded (head sampling; a caller's sampled traceparent, "
        "header or _meta, is always honoured). 1.0 records every trace. OTEL_TRACES_SAMPLER, when set, replaces this.",
    )
    trace_redis_commands: bool = Field(
        False, description="While tracing: a client span per Redis command (its outcome is on the MCP span anyway)."
    )
