"""``python -m app stdio`` as a desktop client runs it: a child process spoken to with the SDK's stdio client.

The principal comes from settings (no bearer token on stdio) and the whole guard chain applies to
it: scopes, the rate limit, idempotency. stdout carries nothing but JSON-RPC; the process exits 0
when stdin closes and on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from pydantic import ValidationError

from app.settings import StdioSettings

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
EXIT_WAIT_SECONDS = 30  # a bound on waiting for the process, not a measurement


def params(tmp_path: Path, **env: str) -> StdioServerParameters:
    # cwd: an empty directory, so no .env of the developer's is read.
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "app", "stdio"],
        env={"PYTHONPATH": str(ROOT), **env},
        cwd=tmp_path,
    )


def structured(result: Any) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


@pytest.mark.subprocess
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_lists_and_calls_tools_as_the_configured_principal(tmp_path: Path, mode: str) -> None:
    server = params(tmp_path, MCPS_STDIO_PRINCIPAL="alice", MCPS_STDIO_SCOPES="tasks:read tasks:write")
    async with Client(server, mode=mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"create_task", "list_tasks", "get_task"} <= names
        assert "health_check" not in names  # system:read is not among this principal's scopes
        created = await client.call_tool("create_task", {"title": "Write the stdio docs"})
        assert not created.is_error, created
        task = structured(created)
        fetched = await client.call_tool("get_task", {"task_id": task["id"]})
        assert structured(fetched)["title"] == "Write the stdio docs"


@pytest.mark.subprocess
async def test_a_missing_scope_is_refused_with_a_structured_error(tmp_path: Path) -> None:
    async with Client(params(tmp_path, MCPS_STDIO_SCOPES="tasks:read"), mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "create_task" not in names
        assert "list_tasks" in names
        refused = await client.call_tool("create_task", {"title": "nope"})
        assert refused.is_error
        body = structured(refused)
        assert body["code"] == "PERMISSION_DENIED"
        assert body["details"]["missing_scopes"] == ["tasks:write"]
        listed = await client.call_tool("list_tasks", {})
        assert structured(listed)["tasks"] == []  # the refused write changed nothing


@pytest.mark.subprocess
async def test_rate_limit_and_idempotency_apply_to_the_local_principal(tmp_path: Path) -> None:
    server = params(tmp_path, MCPS_RATE_LIMIT_CAPACITY="3", MCPS_RATE_LIMIT_REFILL_PER_SECOND="0.001")
    async with Client(server, mode="legacy") as client:
        first = await client.call_tool("create_task", {"title": "once", "idempotency_key": "key-1"})
        again = await client.call_tool("create_task", {"title": "once", "idempotency_key": "key-1"})
        assert structured(again)["id"] == structured(first)["id"]  # replayed, not created twice
        await client.call_tool("list_tasks", {})
        limited = await client.call_tool("list_tasks", {})
        assert limited.is_error
        assert structured(limited)["code"] == "RATE_LIMITED"
        assert structured(limited)["retry_after_ms"] > 0


MODULE = [sys.executable, "-m", "app"]
CONSOLE_SCRIPT = Path(sys.executable).with_name("mcp-service")  # installed by pip next to the interpreter


def _start(tmp_path: Path, command: list[str] = MODULE, **env: str) -> subprocess.Popen[bytes]:
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("MCPS_")}
    environment = {**inherited, "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen(
        [*command, "stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=environment,
    )


def _line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message) + "\n").encode()


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


@pytest.mark.subprocess
@pytest.mark.parametrize("entry", ["module", "console script"])
def test_eof_ends_the_process_with_status_0_and_stdout_is_only_json_rpc(tmp_path: Path, entry: str) -> None:
    if entry == "console script" and not CONSOLE_SCRIPT.exists():
        # scripts/test installs the package (pip install -e .), so a missing script is a broken install.
        pytest.fail("the console script is not installed in this interpreter's environment (pip install -e .)")
    command = MODULE if entry == "module" else [str(CONSOLE_SCRIPT)]
    process = _start(tmp_path, command, MCPS_LOG_LEVEL="DEBUG")  # as many log lines as there can be
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(_line(INITIALIZE))
    process.stdin.flush()
    first = json.loads(process.stdout.readline())
    assert first["id"] == 1
    assert "result" in first
    process.stdin.write(_line({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    process.stdin.write(_line({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
    process.stdin.write(b"this is not json\n")
    process.stdin.write(_line({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
    process.stdin.flush()
    answers = {}
    while len(answers) < 2:
        message = json.loads(process.stdout.readline())
        if "id" in message:
            answers[message["id"]] = message
    rest, stderr = process.communicate(timeout=EXIT_WAIT_SECONDS)  # closes stdin: EOF, the client is gone
    assert process.returncode == 0, stderr.decode()[-2000:]
    for line in rest.decode().splitlines():
        assert json.loads(line)["jsonrpc"] == "2.0"  # anything left on stdout is JSON-RPC too
    assert {2, 3} <= answers.keys()
    assert "tools" in answers[2]["result"]
    log_lines = [json.loads(line) for line in stderr.decode().splitlines() if line.strip()]
    assert any(line.get("mcp_method") == "tools/list" for line in log_lines)  # the access log is on stderr
    assert any("stdin closed" in line["message"] for line in log_lines)


@pytest.mark.subprocess
def test_sigterm_ends_the_process_with_status_0_while_stdin_is_open(tmp_path: Path) -> None:
    process = _start(tmp_path)
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(_line(INITIALIZE))
    process.stdin.flush()
    assert json.loads(process.stdout.readline())["id"] == 1
    process.send_signal(signal.SIGTERM)  # stdin stays open: the reader is blocked in a read
    try:
        returncode = process.wait(timeout=EXIT_WAIT_SECONDS)  # not communicate(): that would close stdin
    finally:
        process.stdin.close()
    assert process.stderr is not None
    stderr = process.stderr.read()
    assert returncode == 0, stderr.decode()[-2000:]
    messages = [json.loads(line)["message"] for line in stderr.decode().splitlines() if line.strip()]
    assert any("received SIGTERM" in message for message in messages)
    assert any(message.startswith("stopped") for message in messages)


@pytest.mark.subprocess
def test_a_bad_setting_is_named_and_nothing_is_served(tmp_path: Path) -> None:
    process = _start(tmp_path, MCPS_STDIO_PRINCIPAL="jwt:evil")  # would enter the JWT principals' namespace
    stdout, stderr = process.communicate(timeout=EXIT_WAIT_SECONDS)
    assert process.returncode == 2
    assert stdout == b""
    assert "MCPS_STDIO_PRINCIPAL" in stderr.decode()


@pytest.mark.parametrize(
    ("given", "scopes"),
    [
        ("tasks:read tasks:write", ["tasks:read", "tasks:write"]),
        ("tasks:read,system:read, tasks:read", ["tasks:read", "system:read"]),
        ("", []),
    ],
)
def test_scopes_are_read_space_or_comma_separated(given: str, scopes: list[str]) -> None:
    assert StdioSettings(_env_file=None, stdio_scopes=given).stdio_scopes == scopes


@pytest.mark.parametrize("given", [{"stdio_scopes": "tasks:read bad/scope"}, {"stdio_principal": "a b"}])
def test_bad_stdio_settings_are_refused(given: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        StdioSettings(_env_file=None, **given)
