"""Graceful shutdown with a real process and a real signal."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from app.factory import create_app
from app.lifecycle import Phase
from app.settings import Settings
from tests.conftest import ServiceFactory
from tests.support.plugins import install_test_packs
from tests.support.rpc import final, legacy_headers

pytestmark = pytest.mark.anyio


def _slow_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**install_test_packs(tmp_path / "site"), "MCPS_PACKS": "slow", **extra}


def _call_in_thread(url: str, seconds: float, outcome: dict[str, Any]) -> threading.Thread:
    async def call() -> None:
        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        async with Client(url, mode="legacy") as client:
            # The SDK client fetches tools/list after a call to validate its output schema; doing it
            # first keeps the client from needing this replica once it has stopped listening.
            await client.list_tools()
            result = await client.call_tool("sleep", {"seconds": seconds}, progress_callback=on_progress)
        outcome["result"] = result
        outcome["progress"] = progress

    def run() -> None:
        try:
            anyio.run(call)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_drain_then_finish_in_flight_then_exit_zero(service_factory: ServiceFactory, tmp_path: Path, sig: int) -> None:
    service = service_factory(_slow_env(tmp_path, MCPS_DRAIN_DELAY_SECONDS="2", MCPS_SHUTDOWN_TIMEOUT_SECONDS="20"))
    outcome: dict[str, Any] = {}
    thread = _call_in_thread(service.mcp_url, 4, outcome)
    time.sleep(1.0)  # the call is in flight
    service.signal(sig)

    # Readiness flips at once...
    deadline = time.monotonic() + 1.0
    status = None
    while time.monotonic() < deadline:
        status = httpx2.get(f"{service.base_url}/health/ready").status_code
        if status == 503:
            break
        time.sleep(0.02)
    assert status == 503
    assert httpx2.get(f"{service.base_url}/health/live").status_code == 200
    # ...while new requests arriving during the drain delay are still served.
    response = httpx2.post(
        service.mcp_url, headers=legacy_headers(), json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    )
    assert response.status_code == 200
    assert "sleep" in {tool["name"] for tool in final(response)["result"]["tools"]}

    assert service.wait(timeout=30) == 0
    thread.join(10)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].is_error is False
    assert outcome["result"].content[0].text == "slept 4s"
    assert outcome["progress"] == [1, 2, 3, 4]
    messages = [r.get("message", "") for r in service.log_records()]
    assert any(m.startswith(f"received {signal.Signals(sig).name}: draining") for m in messages)
    assert "stopped cleanly" in messages


def test_deadline_cancels_stuck_calls_and_still_exits_zero(service_factory: ServiceFactory, tmp_path: Path) -> None:
    service = service_factory(_slow_env(tmp_path, MCPS_DRAIN_DELAY_SECONDS="0", MCPS_SHUTDOWN_TIMEOUT_SECONDS="1"))
    outcome: dict[str, Any] = {}
    thread = _call_in_thread(service.mcp_url, 60, outcome)
    time.sleep(1.0)
    started = time.monotonic()
    service.signal(signal.SIGTERM)
    assert service.wait(timeout=30) == 0
    elapsed = time.monotonic() - started
    thread.join(30)
    assert "result" not in outcome  # the 60 s call never completed
    assert elapsed < 30  # bounded by the deadline, not by the call
    messages = [r.get("message", "") for r in service.log_records()]
    assert any("timeout graceful shutdown exceeded" in m for m in messages)


async def test_requests_after_the_drain_get_503_with_retry_after() -> None:
    app = create_app(Settings(retry_after_seconds=7, auth_disabled=True, _env_file=None), configure_logs=False)
    app.state.services.lifecycle.phase = Phase.STOPPING
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.post(
            "/mcp", headers=legacy_headers(), json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "7"
        assert response.json()["error"] == "shutting_down"
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "stopping"
        assert (await client.get("/health/live")).status_code == 200


def test_broken_pack_stops_startup_naming_it(service_factory: ServiceFactory, tmp_path: Path) -> None:
    env = {**install_test_packs(tmp_path / "site"), "MCPS_PACKS": "broken"}
    service = service_factory(env, wait_ready=False)
    assert service.wait(timeout=30) != 0
    assert "tool pack 'broken' failed to load: RuntimeError: this pack is broken on purpose" in service.log_text()


def test_unknown_pack_lists_known_ones(service_factory: ServiceFactory, tmp_path: Path) -> None:
    env = {**install_test_packs(tmp_path / "site"), "MCPS_PACKS": "nope"}
    service = service_factory(env, wait_ready=False)
    assert service.wait(timeout=30) != 0
    text = service.log_text()
    assert "tool pack 'nope' is not installed" in text
    assert "conformance" in text
    assert "slow" in text
