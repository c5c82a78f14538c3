"""Redis stopped mid-run and restarted: the service answers per policy, shows it, and heals by itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.conftest import ServiceFactory
from tests.support.redis_server import RedisServer
from tests.support.service import ServiceProcess
from tests.test_guard_chain import ALICE, call, error_of, guard_env


def ready(service: ServiceProcess) -> tuple[int, dict[str, Any]]:
    response = httpx2.get(f"{service.base_url}/health/ready", timeout=5)
    return response.status_code, response.json()


def check(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in body["checks"] if c["name"] == name)


def wait_for(condition: Any, timeout: float = 15.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_local_fallback_then_recovery(service_factory: ServiceFactory, tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis:
        service = service_factory(
            guard_env(tmp_path / "site", MCPS_REDIS_URL=redis.url, MCPS_RATE_LIMIT_CAPACITY="1000")
        )
        assert call(service, "cheap")["isError"] is False
        status, body = ready(service)
        assert (status, body["status"]) == (200, "healthy")

        redis.stop()
        started = time.monotonic()
        for _ in range(20):  # answered by the local bucket, each within the backend timeout
            assert call(service, "cheap")["isError"] is False
        assert time.monotonic() - started < 15
        cached = call(service, "echo_cached", {"text": "outage"})  # the cache is skipped, the tool runs
        assert cached["isError"] is False
        write = error_of(call(service, "note_write", {"text": "x", "idempotency_key": "k-outage"}))
        assert write["code"] == "UNAVAILABLE"  # never run unprotected: it could write twice
        assert write["retryable"] is True
        status, body = ready(service)
        assert status == 200  # degraded, still serving: failing every replica's readiness would empty the fleet
        assert body["status"] == "degraded"
        assert check(body, "redis")["status"] == "unhealthy"
        assert check(body, "rate_limiter")["status"] == "degraded"
        warnings = [r["message"] for r in service.log_records() if r.get("level") == "WARNING"]
        assert sum("rate-limit store" in m for m in warnings) == 1, warnings  # once per outage, not per call

        redis.start()
        recovery = wait_for(lambda: not call(service, "cheap")["isError"] and ready(service)[1]["status"] == "healthy")
        print(f"\nrecovered {recovery:.2f}s after Redis came back")
        assert any("back after" in r.get("message", "") for r in service.log_records())
        replay_key = f"k-{time.monotonic_ns()}"
        first = call(service, "note_write", {"text": "y", "idempotency_key": replay_key})
        assert first["isError"] is False
        assert (
            call(service, "note_write", {"text": "y", "idempotency_key": replay_key})["structuredContent"]
            == (first["structuredContent"])
        )


@pytest.mark.parametrize(("policy", "expect_error"), [("deny", "RATE_LIMITED"), ("allow", None)])
def test_other_fallback_policies(
    service_factory: ServiceFactory, tmp_path: Path, policy: str, expect_error: str | None
) -> None:
    with RedisServer(tmp_path / "redis") as redis:
        service = service_factory(
            guard_env(tmp_path / "site", MCPS_REDIS_URL=redis.url, MCPS_RATE_LIMIT_FALLBACK=policy)
        )
        redis.stop()
        result = call(service, "cheap", token=ALICE)
        if expect_error is None:
            assert result["isError"] is False
        else:
            error = error_of(result)
            assert error["code"] == expect_error
            assert error["retry_after_ms"] >= 1
        redis.start()
        wait_for(lambda: not call(service, "cheap")["isError"] and ready(service)[1]["status"] == "healthy")
