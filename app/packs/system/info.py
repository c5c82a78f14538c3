"""``health_check`` and ``server_info``: the same facts as /health/ready, for a model to read."""

from __future__ import annotations

import os
import resource
from typing import Any, Literal

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from app import __version__
from app.packs.api import PackContext

SCOPES = ("system:read",)


class DependencyStatus(BaseModel):
    name: str
    status: Literal["healthy", "degraded", "unhealthy"]
    required: bool
    latency_ms: float
    details: dict[str, object] = Field(default_factory=dict)


class MemoryUse(BaseModel):
    rss_bytes: int | None = Field(description="Resident memory now (Linux), None elsewhere.")
    peak_rss_bytes: int = Field(description="Peak resident memory of this process.")


class HealthReport(BaseModel):
    status: str = Field(description="healthy, degraded or unhealthy; or the phase while starting or shutting down")
    phase: str
    dependencies: list[DependencyStatus]
    memory: MemoryUse


class ServerInfo(BaseModel):
    name: str
    version: str
    mcp_sdk_version: str
    enabled_packs: list[str]
    protocol_versions: list[str]
    transport_mode: str
    backend: str


def _memory() -> MemoryUse:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rss = None
    try:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        pass
    return MemoryUse(rss_bytes=rss, peak_rss_bytes=peak)


def register(pack: PackContext[Any]) -> None:
    service = pack.service

    @pack.tool(
        "health_check",
        description=(
            "Report this MCP service's own health: overall status, each dependency (Redis, identity provider "
            "keys, upstream APIs' circuit breakers) with its latency and details, and memory use. Use it when "
            "other tools fail with UNAVAILABLE or UPSTREAM_UNAVAILABLE to see what is down. It does not check "
            "third-party services beyond what this service itself depends on."
        ),
        scopes=SCOPES,
        read_only=True,
    )
    async def health_check() -> HealthReport:
        health = await service.health()
        dependencies = [
            DependencyStatus(
                name=str(c["name"]),
                status=c["status"],  # type: ignore[arg-type]
                required=bool(c["required"]),
                latency_ms=float(c["latency_ms"]),  # type: ignore[arg-type]
                details={k: v for k, v in c.items() if k not in ("name", "status", "required", "latency_ms")},
            )
            for c in health.checks
        ]
        return HealthReport(status=health.status, phase=health.phase, dependencies=dependencies, memory=_memory())

    @pack.tool(
        "server_info",
        description=(
            "Describe this MCP service: its name and version, the MCP SDK version, the tool packs enabled, the "
            "protocol versions it speaks, its transport mode and state backend. Use it to check what the server "
            "supports; to see the tools themselves, list them or read docs://tools."
        ),
        scopes=SCOPES,
        read_only=True,
        cache_ttl_seconds=60,
        cache_public=True,
    )
    async def server_info() -> ServerInfo:
        from importlib.metadata import version

        return ServerInfo(
            name=service.name,
            version=__version__,
            mcp_sdk_version=version("mcp"),
            enabled_packs=list(service.enabled_packs),
            protocol_versions=[*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS],
            transport_mode=service.transport_mode,
            backend=service.backend,
        )
