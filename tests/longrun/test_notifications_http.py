"""``notifications/tasks`` over real HTTP: two service processes sharing one real Redis.

A task runs on replica A; its owner listens on replica B with ``taskIds`` and hears every status
change (working, input_required, working again after ``tasks/update`` through A, completed with the
result), each the whole task as ``tasks/get`` answers it. Another principal naming the same id on
the same replica is acknowledged without it and hears nothing. A client that does not declare the
extension is refused with -32021, a bad ``taskIds`` with -32602. Shutdown ends the streams with
their final result. Every wait is bounded.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.auth.api_keys import digest, new_key
from tests.conftest import ServiceFactory
from tests.support.redis_server import RedisServer
from tests.support.rpc import final, modern_headers, modern_meta
from tests.support.service import ServiceProcess

EXTENSION = "io.modelcontextprotocol/tasks"
ACKNOWLEDGED = "notifications/subscriptions/acknowledged"
SCOPES = "conformance"
KEYS = {"owner": new_key(), "other": new_key()}
_ids = itertools.count(1)


def meta(*, declare: bool = True) -> dict[str, Any]:
    sent = modern_meta()
    if declare:
        sent["io.modelcontextprotocol/clientCapabilities"] = {"extensions": {EXTENSION: {}}}
    return sent


def request(service: ServiceProcess, method: str, params: dict[str, Any], principal: str = "owner") -> dict[str, Any]:
    name = params.get("name") if method == "tools/call" else params.get("taskId")
    headers = {**modern_headers(method, name), "authorization": f"Bearer {KEYS[principal]}"}
    body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": {**params, "_meta": meta()}}
    return final(httpx2.post(service.mcp_url, headers=headers, json=body, timeout=30))


@dataclass
class Listen:
    """One open listen stream, read on a thread until the server ends it."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def wait_for(self, what: str, found: Callable[[list[dict[str, Any]]], bool], within: float = 30) -> None:
        deadline = time.monotonic() + within
        while not found(list(self.messages)):
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"no {what} within {within}s: {self.messages}"
            time.sleep(0.05)

    def tasks(self) -> list[dict[str, Any]]:
        return [m["params"] for m in self.messages if m.get("method") == "notifications/tasks"]


def listen(service: ServiceProcess, principal: str, notifications: dict[str, Any], listen_id: str) -> Listen:
    body = {
        "jsonrpc": "2.0",
        "id": listen_id,
        "method": "subscriptions/listen",
        "params": {"notifications": notifications, "_meta": meta()},
    }
    headers = {**modern_headers("subscriptions/listen"), "authorization": f"Bearer {KEYS[principal]}"}
    stream = Listen()

    def run() -> None:
        try:
            with (
                httpx2.Client(timeout=httpx2.Timeout(60.0)) as client,
                client.stream("POST", service.mcp_url, headers=headers, json=body) as response,
            ):
                for line in response.iter_lines():
                    text = line[5:] if line.startswith("data:") else ""
                    if text.strip().startswith("{"):
                        stream.messages.append(json.loads(text))
        except BaseException as exc:  # surfaced by wait_for
            stream.errors.append(exc)

    stream.thread = threading.Thread(target=run, daemon=True)
    stream.thread.start()
    stream.wait_for("acknowledgement", lambda messages: any(m.get("method") == ACKNOWLEDGED for m in messages))
    return stream


@pytest.fixture
def replicas(service_factory: ServiceFactory, tmp_path: Path) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    with RedisServer(tmp_path / "redis") as redis:
        env = {
            "MCPS_AUTH_DISABLED": "false",
            "MCPS_PACKS": "conformance",
            "MCPS_API_KEYS": ",".join(
                f"sha256:{digest(k).hex()};principal={p};scopes={SCOPES}" for p, k in KEYS.items()
            ),
            "MCPS_REDIS_URL": redis.url,
            "MCPS_RATE_LIMIT_CAPACITY": "100000",
            "MCPS_LONGRUN_CHECK_SECONDS": "0.1",
        }
        a, b = service_factory(env), service_factory(env)
        yield a, b
        a.stop()  # before Redis goes
        b.stop()


def test_one_replica_without_redis_notifies_its_listeners_too(service_factory: ServiceFactory) -> None:
    env = {
        "MCPS_AUTH_DISABLED": "false",
        "MCPS_PACKS": "conformance",
        "MCPS_API_KEYS": f"sha256:{digest(KEYS['owner']).hex()};principal=owner;scopes={SCOPES}",
    }
    service = service_factory(env)
    created = request(service, "tools/call", {"name": "slow_compute", "arguments": {"seconds": 1, "label": "local"}})
    task_id = created["result"]["taskId"]
    stream = listen(service, "owner", {"taskIds": [task_id]}, "listen-local")
    stream.wait_for("completed", lambda _: any(t["status"] == "completed" for t in stream.tasks()))
    statuses = [t["status"] for t in stream.tasks()]
    assert statuses in (["working", "completed"], ["completed"])  # its state at the listen, then its end
    assert stream.tasks()[-1]["result"]["content"][0]["text"] == "computed local after 1s"


def test_the_owner_listening_on_another_replica_hears_every_status_change(
    replicas: tuple[ServiceProcess, ServiceProcess],
) -> None:
    a, b = replicas
    created = request(a, "tools/call", {"name": "confirm_delete", "arguments": {"filename": "report.csv"}})
    assert created["result"]["resultType"] == "task", created
    task_id = created["result"]["taskId"]

    owner = listen(b, "owner", {"taskIds": [task_id, "no-such-task"], "toolsListChanged": True}, "listen-owner")
    other = listen(b, "other", {"taskIds": [task_id]}, "listen-other")
    [owner_ack] = [m for m in owner.messages if m.get("method") == ACKNOWLEDGED]
    assert owner_ack["params"]["notifications"] == {"taskIds": [task_id], "toolsListChanged": True}
    assert owner_ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-owner"
    [other_ack] = [m for m in other.messages if m.get("method") == ACKNOWLEDGED]
    assert other_ack["params"]["notifications"] == {}  # not theirs: not agreed to, and nothing said why

    owner.wait_for("input_required", lambda _: any(t["status"] == "input_required" for t in owner.tasks()))
    question = next(t for t in owner.tasks() if t["status"] == "input_required")
    assert question["taskId"] == task_id
    assert "confirm" in question["inputRequests"]
    assert question["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-owner"
    assert {"createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"} <= question.keys()

    answer = {"confirm": {"action": "accept", "content": {"confirm": True}}}
    assert "result" in request(a, "tasks/update", {"taskId": task_id, "inputResponses": answer})
    owner.wait_for("completed", lambda _: any(t["status"] == "completed" for t in owner.tasks()))
    done = next(t for t in owner.tasks() if t["status"] == "completed")
    assert done["result"]["content"][0]["text"] == "deleted report.csv"
    assert "resultType" not in done
    polled = request(a, "tasks/get", {"taskId": task_id})["result"]
    assert {k: v for k, v in done.items() if k != "_meta"} == {
        k: v for k, v in polled.items() if k not in ("resultType", "_meta")
    }

    statuses = [t["status"] for t in owner.tasks()]
    assert statuses[-1] == "completed"
    assert statuses.count("completed") == 1  # a state is sent once
    assert set(statuses) <= {"working", "input_required", "completed"}
    assert {t["taskId"] for t in owner.tasks()} == {task_id}
    assert other.tasks() == []  # another principal never hears of it

    for service in (a, b):  # shutdown ends each stream with its final result
        service.stop()
    for stream, listen_id in ((owner, "listen-owner"), (other, "listen-other")):
        assert stream.thread is not None
        stream.thread.join(timeout=30)
        assert not stream.thread.is_alive()
        assert stream.messages[-1].get("id") == listen_id
        assert "result" in stream.messages[-1]


def test_a_task_listen_without_the_extension_or_with_bad_ids_is_refused(
    replicas: tuple[ServiceProcess, ServiceProcess],
) -> None:
    a, _ = replicas

    def refused(notifications: dict[str, Any], *, declare: bool) -> dict[str, Any]:
        headers = {**modern_headers("subscriptions/listen"), "authorization": f"Bearer {KEYS['owner']}"}
        body = {
            "jsonrpc": "2.0",
            "id": next(_ids),
            "method": "subscriptions/listen",
            "params": {"notifications": notifications, "_meta": meta(declare=declare)},
        }
        message = final(httpx2.post(a.mcp_url, headers=headers, json=body, timeout=30))
        assert "error" in message, message
        error: dict[str, Any] = message["error"]
        return error

    undeclared = refused({"taskIds": ["x"]}, declare=False)
    assert undeclared["code"] == -32021
    assert undeclared["data"]["requiredCapabilities"] == {"extensions": {EXTENSION: {}}}
    bad = refused({"taskIds": "x"}, declare=True)
    assert bad["code"] == -32602
    assert bad["data"]["field"] == "notifications.taskIds"
    too_many = refused({"taskIds": [f"t{i}" for i in range(101)]}, declare=True)
    assert (too_many["code"], too_many["data"]["limit"]) == (-32602, 100)
