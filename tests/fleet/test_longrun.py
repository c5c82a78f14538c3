"""Tasks (SEP-2663) across a fleet: three replicas sharing Redis (AOF on) behind nginx.

A task created through one replica is polled and cancelled through the others and invisible to
another principal; the replica running a task is killed (SIGKILL) or stopped (SIGTERM, a short task
drain) mid-task: a re-runnable task ends ``completed`` on another replica, any other ends ``failed``
with a retryable UNAVAILABLE error; none stays ``working``. Every wait is bounded.

Each scenario prints one summary line (run with ``-s``), from the service's own records (its log lines,
the tasks as ``tasks/get`` answers them): calls made, tasks created, how each ended, re-runs, and how
long after the stop signal another replica picked up each orphaned task (the claiming replica logs
``claimed_at_ms``). The test asserts the invariants on them, never a duration.
"""

from __future__ import annotations

import itertools
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest

from tests.fleet.conftest import Fleet, FleetFactory, bearer
from tests.support.rpc import final, modern_headers, modern_meta

pytestmark = pytest.mark.fleet

EXTENSION = "io.modelcontextprotocol/tasks"
TERMINAL = {"completed", "failed", "cancelled"}
_ids = itertools.count(1)
CALLS = Counter[str]()  # JSON-RPC calls the tests made
RERUN_SAFE = {"slow_compute"}  # the conformance pack's declarations (slow_once is not)
CREATED = re.compile(r"task (\S+): created for tool")

SETTINGS = {
    "MCPS_LONGRUN_LEASE_SECONDS": "2",
    "MCPS_LONGRUN_CHECK_SECONDS": "0.2",
    "MCPS_LONGRUN_DRAIN_SECONDS": "1",
    "MCPS_SHUTDOWN_TIMEOUT_SECONDS": "2",
}


def request(url: str, method: str, params: dict[str, Any], *, principal: str = "fleet") -> dict[str, Any]:
    """One raw 2026-07-28 request from a client that declares the tasks extension; the JSON-RPC message."""
    meta = modern_meta()
    meta["io.modelcontextprotocol/clientCapabilities"] = {"extensions": {EXTENSION: {}}}
    name = params.get("name") if method == "tools/call" else params.get("taskId")
    headers = modern_headers(method, name)
    headers["authorization"] = f"Bearer {bearer(principal)}"
    body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": {**params, "_meta": meta}}
    CALLS["all"] += 1
    response = httpx2.post(f"{url}/mcp", headers=headers, json=body, timeout=30)
    message = final(response)
    assert response.status_code == (200 if "result" in message else 400), (response.status_code, message)
    return message


def create(url: str, tool: str, arguments: dict[str, Any]) -> str:
    message = request(url, "tools/call", {"name": tool, "arguments": arguments})
    result = message["result"]
    assert result["resultType"] == "task", result
    task_id: str = result["taskId"]
    return task_id


def get(url: str, task_id: str, *, principal: str = "fleet") -> dict[str, Any]:
    message = request(url, "tasks/get", {"taskId": task_id}, principal=principal)
    assert "result" in message, message
    result: dict[str, Any] = message["result"]
    return result


def settle(urls: list[str], task_id: str, within: float = 60.0) -> dict[str, Any]:
    """Poll (round-robin over ``urls``) until the task ends; fails if it is still unfinished after ``within``."""
    deadline = time.monotonic() + within
    for url in itertools.cycle(urls):
        task = get(url, task_id)
        if task["status"] in TERMINAL:
            return task
        assert time.monotonic() < deadline, f"task still {task['status']} after {within}s"
        time.sleep(0.2)
    raise AssertionError("unreachable")


def urls_of(fleet: Fleet, *indexes: int) -> list[str]:
    return [fleet.replicas[i].base_url for i in indexes]


@dataclass
class Tally:
    """One scenario's figures, from the service's records, and the invariants on them."""

    scenario: str
    fleet: Fleet
    calls_before: int = field(default_factory=lambda: CALLS["all"])
    tools: dict[str, str] = field(default_factory=dict)  # task id -> its tool
    ends: dict[str, str] = field(default_factory=dict)  # task id -> how it ended (tasks/get)
    stopped_at_ms: int | None = None

    def create(self, url: str, tool: str, arguments: dict[str, Any]) -> str:
        task_id = create(url, tool, arguments)
        self.tools[task_id] = tool
        return task_id

    def stop_signal_sent(self) -> None:
        """Now: the replica (or Redis) was just sent its stop signal."""
        self.stopped_at_ms = int(time.time() * 1000)

    def ended(self, task: dict[str, Any]) -> dict[str, Any]:
        self.ends[task["taskId"]] = task["status"]
        return task

    def report(self) -> str:
        records = [r for r in self.fleet.log_records() if "message" in r]
        created = Counter(
            m.group(1) for r in records if (m := CREATED.search(r["message"])) and m.group(1) in self.tools
        )
        claims = [r for r in records if r.get("task_id") in self.tools and "claimed_at_ms" in r]
        reruns = [r for r in claims if "re-running it" in r["message"]]
        # Every task created once, each ended (none lost, none left working).
        assert created == Counter(self.tools.keys()), (created, self.tools)
        assert self.ends.keys() == self.tools.keys()
        assert set(self.ends.values()) <= TERMINAL
        # Run again elsewhere only when its tool declared that safe; any other orphan ends failed.
        assert {self.tools[r["task_id"]] for r in reruns} <= RERUN_SAFE
        for r in claims:
            if self.tools[r["task_id"]] not in RERUN_SAFE:
                assert self.ends[r["task_id"]] == "failed"
        ended = Counter(self.ends.values())
        per_tool = ", ".join(f"{n} {tool}" for tool, n in sorted(Counter(self.tools.values()).items()))
        line = (
            f"[longrun {self.scenario}] calls {CALLS['all'] - self.calls_before}, "
            f"tasks created {len(self.tools)} ({per_tool}), "
            f"ended: completed {ended['completed']}, failed {ended['failed']}, cancelled {ended['cancelled']}; "
            f"re-runs {len(reruns)}; orphans picked up {len(claims)}"
        )
        if claims and self.stopped_at_ms is not None:
            waits = sorted(r["claimed_at_ms"] - self.stopped_at_ms for r in claims)
            assert waits[0] >= 0  # picked up after the stop, never before
            line += f", {waits[0]}-{waits[-1]} ms after the stop"
        print(line)
        return line


def test_any_replica_answers_for_a_task_and_only_its_owner_sees_it(fleet_factory: FleetFactory) -> None:
    fleet = fleet_factory(3, **SETTINGS)
    tally = Tally("poll and cancel across replicas", fleet)
    task_id = tally.create(fleet.url, "slow_compute", {"seconds": 2, "label": "shared"})
    seen = {get(url, task_id)["taskId"] for url in urls_of(fleet, 0, 1, 2)}
    assert seen == {task_id}
    stranger = request(fleet.url, "tasks/get", {"taskId": task_id}, principal="modern")
    assert stranger["error"]["code"] == -32602  # another principal's task does not exist for them
    refused = request(fleet.url, "tasks/cancel", {"taskId": task_id}, principal="modern")
    assert refused["error"]["code"] == -32602
    done = tally.ended(settle(urls_of(fleet, 2, 1, 0), task_id))
    assert done["status"] == "completed"
    assert done["result"]["content"][0]["text"] == "computed shared after 2s"

    cancelled_id = tally.create(fleet.url, "slow_compute", {"seconds": 60})
    for url in urls_of(fleet, 0, 1, 2):  # cancel through every replica: one ack each, idempotent
        assert request(url, "tasks/cancel", {"taskId": cancelled_id})["result"]["resultType"] == "complete"
    assert tally.ended(settle(urls_of(fleet, 1), cancelled_id))["status"] == "cancelled"
    tally.report()


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_task_whose_replica_stops_ends_by_its_tools_declaration(fleet_factory: FleetFactory, stop: int) -> None:
    fleet = fleet_factory(3, **SETTINGS)
    victim = fleet.replicas[0]
    tally = Tally(f"{signal.Signals(stop).name} mid-task", fleet)
    rerun = tally.create(victim.base_url, "slow_compute", {"seconds": 4, "label": "rerun"})
    once = tally.create(victim.base_url, "slow_once", {"seconds": 4})
    time.sleep(0.5)  # both running on the victim
    victim.signal(stop)
    tally.stop_signal_sent()
    victim.wait(timeout=30)
    survivors = urls_of(fleet, 1, 2)
    rerun_end = tally.ended(settle(survivors, rerun))
    once_end = tally.ended(settle(survivors, once))
    assert rerun_end["status"] == "completed"
    assert rerun_end["result"]["content"][0]["text"] == "computed rerun after 4s"
    assert once_end["status"] == "failed"
    assert once_end["error"]["data"]["code"] == "UNAVAILABLE"
    assert once_end["error"]["data"]["retryable"] is True
    assert "not safe to re-run" in once_end["error"]["message"]
    assert "re-runs 1;" in tally.report()  # the re-runnable one, once, on another replica


def test_tasks_survive_a_redis_restart_mid_run(fleet_factory: FleetFactory) -> None:
    fleet = fleet_factory(3, redis_fsync="always", **SETTINGS)
    tally = Tally("Redis restarted mid-run", fleet)
    finished = tally.create(fleet.url, "slow_compute", {"seconds": 0, "label": "before"})
    assert settle(urls_of(fleet, 0), finished)["status"] == "completed"
    rerun = tally.create(fleet.url, "slow_compute", {"seconds": 5, "label": "through"})
    once = tally.create(fleet.url, "slow_once", {"seconds": 5})
    time.sleep(0.5)
    fleet.redis.stop(kill=True)
    tally.stop_signal_sent()
    time.sleep(3)  # longer than a lease: the runners cannot renew and stop their runs
    fleet.redis.start()
    everyone = urls_of(fleet, 0, 1, 2)
    kept = tally.ended(settle(everyone, finished))
    assert kept["result"]["content"][0]["text"] == "computed before after 0s"  # from the AOF
    assert tally.ended(settle(everyone, rerun))["status"] == "completed"
    once_end = tally.ended(settle(everyone, once))
    if once_end["status"] == "failed":  # its run was stopped; it is not safe to run again
        assert once_end["error"]["data"]["code"] == "UNAVAILABLE"
    else:
        assert once_end["status"] == "completed"
    tally.report()
