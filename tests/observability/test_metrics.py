"""/metrics after a scripted SDK session: exact deltas per outcome, bounded labels, the access log, promtool."""

from __future__ import annotations

import subprocess
from collections import Counter
from typing import Any

import anyio
import httpx2
import pytest

from app.auth.api_keys import digest, new_key
from tests.conftest import ServiceFactory
from tests.observability.scrape import Scrape, scrape
from tests.support.clients import client_with_token
from tests.support.rpc import call_tool, tool_result
from tests.support.service import ServiceProcess

pytestmark = pytest.mark.anyio

TESTER_KEY = new_key()
SECOND_KEY = new_key()
DURATION = "mcp_server_operation_duration_seconds"


def key_entry(key: str, principal: str, scopes: str) -> str:
    return f"sha256:{digest(key).hex()};principal={principal};scopes={scopes}"


@pytest.fixture(scope="module")
def service(module_service_factory: ServiceFactory, packs_env: dict[str, str]) -> ServiceProcess:
    return module_service_factory(
        {
            **packs_env,
            "MCPS_PACKS": "obs,slow",
            "MCPS_AUTH_DISABLED": "false",
            "MCPS_API_KEYS": f"{key_entry(TESTER_KEY, 'tester', 'obs slow')},{key_entry(SECOND_KEY, 'second', 'obs')}",
            "MCPS_RATE_LIMIT_PER_TOOL": "true",
            "MCPS_RATE_LIMIT_CAPACITY": "1000",
            "MCPS_METRICS_PER_PRINCIPAL": "true",
            "MCPS_METRICS_PRINCIPAL_CAP": "1",
        }
    )


# (tool, arguments) in order, with the outcome each must be counted under.
SCRIPT: list[tuple[str, dict[str, Any], str]] = [
    ("obs_echo", {"text": "a"}, "ok"),  # cache miss
    ("obs_echo", {"text": "a"}, "ok"),  # cache hit
    ("obs_fail", {}, "tool_error"),
    ("obs_crash", {}, "error"),
    ("obs_slow", {}, "timeout"),
    ("obs_costly", {}, "ok"),  # takes the whole bucket of (tester, obs_costly)
    ("obs_costly", {}, "rate_limited"),
    ("obs_secret", {}, "denied"),
    ("obs_write", {"value": "1", "idempotency_key": "k1"}, "ok"),  # new
    ("obs_write", {"value": "1", "idempotency_key": "k1"}, "ok"),  # replay
    ("obs_write", {"value": "2", "idempotency_key": "k1"}, "tool_error"),  # conflict
    ("no_such_tool_x9", {}, "denied"),  # unknown: admin only; its label must be "other"
]


async def run_session(service: ServiceProcess) -> None:
    async with client_with_token(service.mcp_url, TESTER_KEY) as client:
        for tool, arguments, outcome in SCRIPT:
            result = await client.call_tool(tool, arguments)
            assert result.is_error == (outcome != "ok"), (tool, result)
        # Two identical slow calls: the second joins the first one in flight (coalesced).
        async with anyio.create_task_group() as group:
            group.start_soon(client.call_tool, "obs_echo", {"text": "c", "delay": 0.6})
            await anyio.sleep(0.2)
            group.start_soon(client.call_tool, "obs_echo", {"text": "c", "delay": 0.6})


def tool_calls(before: Scrape, after: Scrape) -> dict[tuple[str, str], float]:
    """Delta of tools/call counts by (tool label, outcome)."""
    deltas: dict[tuple[str, str], float] = {}
    for labels, value in after.series(f"{DURATION}_count"):
        if labels.get("mcp_method_name") != "tools/call":
            continue
        delta = value - before.value(f"{DURATION}_count", **labels)
        if delta:
            deltas[(labels["gen_ai_tool_name"], labels["outcome"])] = delta
    return deltas


async def test_exact_deltas_for_every_outcome(service: ServiceProcess, promtool: str) -> None:
    before = scrape(service.base_url)
    await run_session(service)
    # The second principal makes one raw call (one MCP message): the cap of 1 puts it in "other".
    assert not tool_result(call_tool(service.base_url, "obs_echo", {"text": "b"}, token=SECOND_KEY))["isError"]
    after = scrape(service.base_url)

    assert tool_calls(before, after) == {
        ("obs_echo", "ok"): 5,
        ("obs_fail", "tool_error"): 1,
        ("obs_crash", "error"): 1,
        ("obs_slow", "timeout"): 1,
        ("obs_costly", "ok"): 1,
        ("obs_costly", "rate_limited"): 1,
        ("obs_secret", "denied"): 1,
        ("obs_write", "ok"): 2,
        ("obs_write", "tool_error"): 1,
        ("other", "denied"): 1,
    }
    # Histogram shape: every observation is in +Inf; the timed-out call (cancelled at 0.2 s, so never
    # done in half of that: no upper bound is asserted, a loaded machine may take longer) is above 0.1.
    slow = {"mcp_method_name": "tools/call", "gen_ai_tool_name": "obs_slow", "outcome": "timeout"}
    assert after.delta(before, f"{DURATION}_bucket", le="+Inf", **slow) == 1
    assert after.delta(before, f"{DURATION}_bucket", le="0.1", **slow) == 0
    assert after.delta(before, f"{DURATION}_sum", **slow) > 0.1
    # Non-tool methods carry an empty tool label.
    for labels, _ in after.series(f"{DURATION}_count"):
        if labels["mcp_method_name"] != "tools/call":
            assert labels["gen_ai_tool_name"] == "", labels
    assert "no_such_tool_x9" not in after.text

    # Allowed: every call (the script, the coalesced pair, the second principal's) but the two refused
    # before the limiter (denied) and the limited one.
    decisions = "mcp_service_rate_limit_decisions_total"
    assert after.delta(before, decisions, decision="allowed", source="memory") == len(SCRIPT) + 2 + 1 - 3
    assert after.delta(before, decisions, decision="limited", source="memory") == 1
    cache = "mcp_service_cache_requests_total"
    assert after.delta(before, cache, gen_ai_tool_name="obs_echo", result="miss") == 3
    assert after.delta(before, cache, gen_ai_tool_name="obs_echo", result="hit") == 1
    assert after.delta(before, cache, gen_ai_tool_name="obs_echo", result="coalesced") == 1
    idem = "mcp_service_idempotency_requests_total"
    for result in ("new", "replay", "conflict"):
        assert after.delta(before, idem, gen_ai_tool_name="obs_write", result=result) == 1, result
    principals = "mcp_service_principal_requests_total"
    assert after.delta(before, principals, principal="other", outcome="ok") == 1
    assert after.delta(before, principals, principal="tester", outcome="denied") == 2
    assert {labels["principal"] for labels, _ in after.series(principals)} == {"tester", "other"}
    assert after.value("mcp_service_mcp_requests_in_flight", mcp_method_name="tools/call") == 0
    assert after.value("mcp_service_ready") == 1

    # One MCP access-log line per tools/call message, with the decisions.
    lines = [
        r for r in service.log_records() if r.get("logger") == "mcp_service.mcp" and r.get("mcp_method") == "tools/call"
    ]
    expected = Counter(outcome for _, _, outcome in SCRIPT) + Counter({"ok": 3})
    assert Counter(line["outcome"] for line in lines) == expected
    for line in lines:
        assert line["level"] == "INFO"
        assert line["request_id"]
        assert isinstance(line["duration_ms"], float | int)
        assert line["principal"] in ("tester", "second")
        assert "trace_id" not in line  # tracing is off here
    limited = next(line for line in lines if line["outcome"] == "rate_limited")
    assert (limited["tool"], limited["rate_limit"], limited["rate_limit_source"]) == ("obs_costly", "limited", "memory")
    assert {line.get("cache") for line in lines if line["tool"] == "obs_echo"} == {"miss", "hit", "coalesced"}
    assert "obs_secret" in {line["tool"] for line in lines if line["outcome"] == "denied"}
    crash = next(line for line in lines if line["outcome"] == "error")
    assert crash["error_code"] == "INTERNAL_ERROR"

    # promtool accepts the real exposition.
    text = httpx2.get(f"{service.base_url}/metrics").text
    checked = subprocess.run([promtool, "check", "metrics"], input=text, text=True, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_exposition_has_every_family(service: ServiceProcess) -> None:
    text = httpx2.get(f"{service.base_url}/metrics").text
    for family in (
        "mcp_server_operation_duration_seconds",
        "mcp_service_mcp_requests_in_flight",
        "mcp_service_rate_limit_decisions_total",
        "mcp_service_cache_requests_total",
        "mcp_service_idempotency_requests_total",
        "mcp_service_principal_requests_total",
        "mcp_service_upstream_request_duration_seconds",
        "mcp_service_upstream_requests_total",
        "mcp_service_circuit_breaker_state",
        "mcp_service_circuit_breaker_transitions_total",
        "mcp_service_backend_command_duration_seconds",
        "mcp_service_backend_errors_total",
        "mcp_service_http_requests_total",
        "mcp_service_http_request_duration_seconds",
        "mcp_service_http_requests_in_flight",
        "mcp_service_build_info",
        "mcp_service_ready",
        "mcp_service_dependency_healthy",
    ):
        assert f"# TYPE {family} " in text, family
    assert "_created" not in text
