"""A Redis Cluster primary frozen (SIGSTOP) under load: its replica is promoted, the fleet carries on.

A cluster of its own (3 primaries, 3 replicas, ``cluster-node-timeout`` 1000 ms) behind a fleet of
three replicas; clients create tasks (each with an idempotency key) and make cheap calls through
nginx. The frozen primary is the one serving the load's tasks, so its writes meet the failover.

What must hold: every call is answered (HTTP 200, never a dropped connection, within a few backend
timeouts); a call that fails says UNAVAILABLE, and may be retried: a refusal is retryable, and a
write whose outcome is unknown says so and names the safe retry (its idempotency key). Calls
succeed again within seconds of the promotion. No acknowledged task is lost beyond what Redis's
asynchronous replication admits: a write is acknowledged before its replica has it, so the writes
acknowledged in the moment before the primary froze may be lost with it. The test measures that
window exactly: just before freezing, it sends a write and ``WAIT 1`` on the primary; every write
acknowledged before that fence was sent must survive; those acknowledged after it are counted.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.fleet.conftest import KEYS, FleetFactory, result_of, rpc
from tests.support.redis_cluster import REDIS_CLI, RedisCluster
from tests.support.rpc import call_tool, final

pytestmark = pytest.mark.fleet

PREFIX = "fo:"
PRINCIPAL = "loader"
REDIS_TIMEOUT = 0.25
MAX_CALLS = 4000
MAX_SECONDS = 60.0


@dataclass(frozen=True)
class Call:
    at: float  # sent, seconds since the load started
    answered: float  # answered, same clock
    tool: str
    status: int | None
    code: str | None  # None: ok
    retryable: bool
    outcome: str | None  # details.outcome ("unknown" for a write that may have been applied)
    task_id: str | None  # an acknowledged create


class FailoverLoad:
    """``threads`` clients: three create_task calls (fresh idempotency keys) to one cheap call."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.threads = threads
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = 0
        self.started = 0.0
        self._pool = concurrent.futures.ThreadPoolExecutor(threads)
        self._futures: list[concurrent.futures.Future[None]] = []

    def _worker(self, index: int) -> None:
        with httpx2.Client(timeout=30) as http:
            n = 0
            while not self._stop.is_set() and time.monotonic() - self.started < MAX_SECONDS:
                with self._lock:
                    self._sent += 1
                    if self._sent > MAX_CALLS:
                        return
                n += 1
                call = self._one(http, "cheap", {}) if n % 4 == 0 else self._create(http, index, n)
                with self._lock:
                    self.calls.append(call)
                time.sleep(0.005)

    def _create(self, http: httpx2.Client, index: int, n: int) -> Call:
        key = f"fo-{index}-{n}-{os.urandom(4).hex()}"
        return self._one(http, "create_task", {"title": f"t {index} {n}", "idempotency_key": key})

    def _one(self, http: httpx2.Client, tool: str, args: dict[str, Any]) -> Call:
        sent = time.monotonic() - self.started
        status: int | None = None
        code: str | None = None
        retryable = False
        outcome: str | None = None
        task_id: str | None = None
        try:
            response = call_tool(self.url, tool, args, token=KEYS[PRINCIPAL], client=http)
            status = response.status_code
            if status != 200:
                code = f"HTTP {status}"
            else:
                message = final(response)
                if "error" in message:
                    code = f"JSON-RPC {message['error'].get('code')}"
                elif message["result"].get("isError"):
                    body = message["result"].get("structuredContent") or {}
                    code = str(body.get("code", "isError"))
                    retryable = bool(body.get("retryable"))
                    details = body.get("details") or {}
                    outcome = details.get("outcome")
                elif tool == "create_task":
                    task_id = message["result"]["structuredContent"]["id"]
        except Exception as exc:  # a dropped connection, a timeout: a failure
            code = type(exc).__name__
        return Call(sent, time.monotonic() - self.started, tool, status, code, retryable, outcome, task_id)

    def start(self) -> FailoverLoad:
        self.started = time.monotonic()
        self._futures = [self._pool.submit(self._worker, i) for i in range(self.threads)]
        return self

    def stop(self) -> list[Call]:
        self._stop.set()
        for future in self._futures:
            future.result(timeout=90)
        self._pool.shutdown()
        return self.calls


def fence(cluster: RedisCluster, port: int, key: str) -> str:
    """A write on the primary, then WAIT for one replica, on one connection: once it returns 1, every
    write that primary applied before it is on a replica."""
    done = subprocess.run(
        [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port)],
        input=f"SET {key} 1\nWAIT 1 2000\n",
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return done.stdout.split()[-1]


def replicas_of(cluster: RedisCluster, port: int) -> list[int]:
    """The ports of the replicas of the primary on ``port``."""
    primary_id = cluster.cli(port, "CLUSTER", "MYID").strip()
    ports = []
    for entry in cluster.cli(port, "CLUSTER", "NODES").split("\n"):
        fields = entry.split()
        if len(fields) > 3 and fields[3] == primary_id:
            ports.append(int(fields[1].split("@")[0].rsplit(":", 1)[1]))
    return ports


def promoted(cluster: RedisCluster, replica_ports: list[int]) -> bool:
    """Has one of the frozen primary's replicas become a primary (as it says itself)?"""
    return any(cluster.cli(port, "ROLE", timeout=2).startswith("master") for port in replica_ports)


@pytest.fixture
def failover_cluster(tmp_path: Path) -> Any:
    with RedisCluster(tmp_path / "cluster") as cluster:
        yield cluster


def test_a_primary_fails_over_under_load(fleet_factory: FleetFactory, failover_cluster: RedisCluster) -> None:
    cluster = failover_cluster
    fleet = fleet_factory(
        3, cluster=cluster, MCPS_REDIS_KEY_PREFIX=PREFIX, MCPS_REDIS_TIMEOUT_SECONDS=str(REDIS_TIMEOUT)
    )
    url = fleet.url
    tag = f"{PREFIX}tasks:{{{PRINCIPAL}}}:"
    primary = cluster.node_for_key(f"{tag}idx")
    standby = replicas_of(cluster, primary.port)
    assert standby
    assert result_of(rpc(url, "create_task", {"title": "warm-up"}, principal=PRINCIPAL))["isError"] is False

    load = FailoverLoad(url).start()
    time.sleep(2.0)
    fenced_at = time.monotonic() - load.started
    assert fence(cluster, primary.port, f"{tag}fence") == "1"
    primary.pause()  # SIGSTOP: the kernel still accepts connections, nothing answers
    frozen_at = time.monotonic() - load.started
    try:
        deadline = time.monotonic() + 30
        while not promoted(cluster, standby) and time.monotonic() < deadline:
            time.sleep(0.05)
        promoted_at = time.monotonic() - load.started
        assert promoted(cluster, standby)
        time.sleep(4.0)  # the load goes on against the new topology
    finally:
        calls = load.stop()
        primary.resume()  # it rejoins as a replica of the promoted node
    cluster.wait_ok(30)

    failed = [c for c in calls if c.code is not None]
    after_freeze = [c for c in calls if c.answered >= frozen_at]
    last_failure = max((c.answered for c in failed), default=frozen_at)
    first_ok_after = min((c.answered for c in after_freeze if c.code is None and c.tool == "create_task"), default=-1)
    acked = [c for c in calls if c.task_id is not None]
    before_fence = [c for c in acked if c.answered < fenced_at]
    codes: dict[str, int] = {}
    for c in failed:
        label = f"{c.code}{'/unknown' if c.outcome == 'unknown' else ''}{'/retryable' if c.retryable else ''}"
        codes[label] = codes.get(label, 0) + 1

    found: set[str] = set()
    with httpx2.Client(timeout=30) as http:
        for c in acked:
            assert c.task_id is not None
            reply = final(rpc(url, "get_task", {"task_id": c.task_id}, principal=PRINCIPAL, client=http))
            if not reply["result"].get("isError"):
                found.add(c.task_id)
    lost = [c for c in acked if c.task_id not in found]
    lost_before_fence = [c for c in lost if c.answered < fenced_at]

    print(
        f"\nfailover under load: {len(calls)} calls, {len(calls) - len(failed)} ok, {len(failed)} refused/unknown "
        f"{codes}; frozen at {frozen_at:.2f}s, promoted after {promoted_at - frozen_at:.2f}s, "
        f"last failure {last_failure - frozen_at:.2f}s after the freeze, first ok create "
        f"{first_ok_after - frozen_at:.2f}s after it; slowest call {max(c.answered - c.at for c in calls):.2f}s; "
        f"acknowledged creates {len(acked)} ({len(before_fence)} before the fence), lost {len(lost)} "
        f"({len(lost_before_fence)} before the fence)"
    )

    for c in calls:
        assert c.status == 200, c  # never a 5xx, never a dropped connection
        assert c.code is None or c.code == "UNAVAILABLE", c  # structured, never Redis's text or an internal error
        assert c.answered - c.at < 3.0, c  # no hang: a few backend timeouts at most
    for c in failed:
        if c.outcome == "unknown":
            assert c.tool == "create_task", c  # only a write can have an unknown outcome ...
        else:
            assert c.retryable, c  # ... every other failure is a refusal, retryable
    assert failed  # the freeze was felt
    assert last_failure - promoted_at < 10  # calls succeed again within seconds of the promotion
    assert last_failure - frozen_at < 15
    assert [c for c in calls if c.at > last_failure]  # and keep succeeding: the load went on after
    assert not lost_before_fence  # replicated before the freeze: never lost
