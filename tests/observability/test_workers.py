"""Several workers: /metrics sums the whole group, a dead worker is replaced, SIGTERM still exits 0."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx2
import pytest

from tests.conftest import ServiceFactory
from tests.observability.scrape import Scrape, scrape
from tests.support.rpc import call_tool, tool_result

PID_CALLS = {"mcp_method_name": "tools/call", "gen_ai_tool_name": "obs_pid", "outcome": "ok"}
COUNT = "mcp_server_operation_duration_seconds_count"
MAX_CALLS = 400


def served_by(base_url: str) -> int:
    """One call on a fresh connection (so the kernel may hand it to either worker): the serving pid."""
    with httpx2.Client() as client:
        result = tool_result(call_tool(base_url, "obs_pid", client=client))
    assert not result["isError"], result
    return int(result["structuredContent"]["result"])


def test_two_workers_report_the_whole_group(
    service_factory: ServiceFactory, packs_env: dict[str, str], tmp_path: Path, promtool: str
) -> None:
    multiproc_parent = tmp_path / "multiproc"
    service = service_factory(
        {
            **packs_env,
            "MCPS_PACKS": "obs",
            "MCPS_WORKERS": "2",
            "MCPS_RATE_LIMIT_CAPACITY": "100000",
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc_parent),
        }
    )
    before = scrape(service.base_url)
    calls: dict[int, int] = {}
    while len(calls) < 2 or min(calls.values()) < 3:
        pid = served_by(service.base_url)
        calls[pid] = calls.get(pid, 0) + 1
        assert sum(calls.values()) < MAX_CALLS, f"one worker served everything: {calls}"
    assert len(calls) == 2
    made = sum(calls.values())
    # Whichever worker answers the scrape, it reports both workers' calls (scrape a few times).
    for _ in range(6):
        with httpx2.Client() as client:
            text = client.get(f"{service.base_url}/metrics").text
        assert scrape_delta(text, before) == made
    checked = subprocess.run([promtool, "check", "metrics"], input=text, text=True, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The run's samples live in a fresh directory inside the configured one.
    (run_dir,) = list(multiproc_parent.iterdir())
    assert any(name.startswith("counter_") for name in os.listdir(run_dir))

    # A worker killed outright is replaced; its counts stay in the totals, its in-flight gauge goes.
    victim = next(iter(calls))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    seen: set[int] = set()
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx2.HTTPError):
            seen.add(served_by(service.base_url))
        if len(seen - set(calls)) >= 1:
            break
        time.sleep(0.05)
    assert seen - set(calls), f"no replacement worker served a call: {seen}"
    after = scrape(service.base_url)
    assert after.value(COUNT, **PID_CALLS) - before.value(COUNT, **PID_CALLS) >= made
    assert after.value("mcp_service_mcp_requests_in_flight", mcp_method_name="tools/call") == 0
    assert after.value("mcp_service_ready") == 1

    # SIGHUP is declined (uvicorn's rolling restart would start servers without drain-then-stop).
    service.signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while "signal ignored" not in service.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "signal ignored" in service.log_text()
    served_by(service.base_url)

    service.signal(signal.SIGTERM)
    assert service.wait(60) == 0
    assert list(multiproc_parent.iterdir()) == []  # the run's directory is removed
    log = service.log_text()
    assert "starting a replacement" in log
    assert log.count("Finished server process") >= 2  # every remaining worker drained and stopped


def scrape_delta(text: str, before: Scrape) -> float:
    return Scrape(text).value(COUNT, **PID_CALLS) - before.value(COUNT, **PID_CALLS)


@pytest.mark.parametrize("packs", ["obs,no_such_pack"])
def test_a_worker_that_cannot_start_stops_the_group(
    service_factory: ServiceFactory, packs_env: dict[str, str], packs: str
) -> None:
    service = service_factory({**packs_env, "MCPS_PACKS": packs, "MCPS_WORKERS": "2"}, wait_ready=False)
    assert service.wait(60) == 3  # as `python -m app` exits on a pack that does not load
    assert "no_such_pack" in service.log_text()
