"""Binding, connection limits, naming, logging, processes and the shutdown sequence."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from app.settings.base import CommaList, SettingsGroup, http_url, split_list


class ServingSettings(SettingsGroup):
    """Binding, connection limits, naming, logging, processes and the shutdown sequence."""

    host: str = Field(
        "127.0.0.1", description="Address to bind. Non-loopback needs authentication (or the I-know flag)."
    )
    port: int = Field(8000, ge=1, le=65535, description="TCP port to bind.")
    public_url: str | None = Field(
        None,
        description="The URL clients use to reach /mcp (e.g. https://mcp.example.com/mcp). Its host is allowed "
        "by Host/Origin checks and it is the OAuth resource identifier.",
    )
    server_name: str = Field(
        "mcp-service", min_length=1, max_length=100, description="MCP server name (also the request-state audience)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO", description="Root log level.")
    access_log: bool = Field(True, description="One JSON access-log line per HTTP request.")
    access_log_health: bool = Field(False, description="Also log /health/* and /metrics requests (noisy under probes).")
    uvicorn_loop: Literal["auto", "asyncio", "uvloop"] = Field("auto", description="Event loop implementation.")
    uvicorn_http: Literal["auto", "h11", "httptools"] = Field("auto", description="HTTP/1.1 parser implementation.")
    workers: int = Field(1, ge=1, le=64, description="Worker processes (metrics are aggregated across them).")
    max_connections: int = Field(
        1000,
        ge=1,
        description="Open connections (or requests in progress) per worker process; a request arriving past it "
        "gets 503.",
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="A request line plus headers larger than this gets 431 (400 with h11) and the connection is "
        "closed.",
    )
    header_timeout_seconds: float = Field(
        10,
        gt=0,
        le=600,
        description="A request's line and headers must arrive within this of the connection opening (or of a "
        "kept-alive connection's next request starting); otherwise the connection is closed.",
    )
    drain_delay_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="After SIGTERM, /health/ready is 503 but new requests are still served this long, so load "
        "balancers stop routing here before the listener closes.",
    )
    shutdown_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="After the drain delay, in-flight requests get this long to finish before they are cancelled.",
    )
    retry_after_seconds: int = Field(2, ge=0, le=3600, description="Retry-After on 503 answers while shutting down.")
    readiness_check_timeout_seconds: float = Field(
        0.5, gt=0, le=30, description="Budget of each readiness dependency check."
    )
    packs: CommaList = Field(
        default_factory=lambda: ["system", "tasks"],
        description="Tool packs to enable, by name (built-in: system, tasks, github, weather, github_tasks, "
        "conformance; plus any installed under the mcp_service.packs entry-point group). Each pack reads its own "
        "MCPS_<PACK>_* settings.",
    )

    @field_validator("packs", mode="before")
    @classmethod
    def _packs_list(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)
