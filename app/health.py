"""Liveness and readiness: ``/health/live`` says the process runs; ``/health/ready`` says "send me traffic".

Readiness is 503 while starting or shutting down, or when a *required* dependency is unhealthy.
Each dependency registers a check; all run concurrently, each within a small budget, so the probe
answers in milliseconds even when a dependency hangs. A non-required dependency that fails makes
the service ``degraded`` but still ready (the service works around it, e.g. a local rate-limit bucket).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.lifecycle import Lifecycle

Status = Literal["healthy", "degraded", "unhealthy"]


@dataclass(frozen=True)
class CheckResult:
    status: Status
    detail: dict[str, object] = field(default_factory=dict)


CheckFn = Callable[[], Awaitable[CheckResult]]


@dataclass(frozen=True)
class HealthCheck:
    name: str
    check: CheckFn
    required: bool = True


class HealthRegistry:
    """The dependency checks of one app; packs and backends add theirs at start-up."""

    def __init__(self, timeout_seconds: float) -> None:
        self._checks: dict[str, HealthCheck] = {}
        self._timeout = timeout_seconds

    def add(self, name: str, check: CheckFn, *, required: bool = True) -> None:
        if name in self._checks:
            raise ValueError(f"health check {name!r} is registered twice")
        self._checks[name] = HealthCheck(name, check, required)

    async def _run_one(self, hc: HealthCheck) -> dict[str, object]:
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(hc.check(), self._timeout)
        except TimeoutError:
            result = CheckResult("unhealthy", {"error": f"no answer within {self._timeout:g}s"})
        except Exception as exc:  # a check must never take the probe down with it
            result = CheckResult("unhealthy", {"error": type(exc).__name__})
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        return {
            "name": hc.name,
            "status": result.status,
            "required": hc.required,
            "latency_ms": latency_ms,
            **result.detail,
        }

    async def run(self) -> list[dict[str, object]]:
        return list(await asyncio.gather(*(self._run_one(hc) for hc in self._checks.values())))


def overall(checks: list[dict[str, object]]) -> Status:
    if any(c["status"] == "unhealthy" and c["required"] for c in checks):
        return "unhealthy"
    if any(c["status"] != "healthy" for c in checks):
        return "degraded"
    return "healthy"


def health_endpoints(
    lifecycle: Lifecycle, registry: HealthRegistry
) -> tuple[Callable[[Request], Awaitable[Response]], Callable[[Request], Awaitable[Response]]]:
    """The two probe handlers. No auth, no body parsing, no logging: probes hit these every second."""

    async def live(_: Request) -> Response:
        return JSONResponse({"status": "alive"}, headers={"cache-control": "no-store"})

    async def ready(_: Request) -> Response:
        headers = {"cache-control": "no-store"}
        if not lifecycle.ready:
            return JSONResponse({"status": lifecycle.phase.value, "checks": []}, status_code=503, headers=headers)
        checks = await registry.run()
        status = overall(checks)
        code = 503 if status == "unhealthy" else 200
        return JSONResponse({"status": status, "checks": checks}, status_code=code, headers=headers)

    return live, ready
