"""A fleet on loopback: several service processes sharing one Redis (AOF on), or a Redis Cluster
(``cluster=``: the session's 3-primary cluster, under a key prefix of the fleet's own), behind nginx.

`Fleet` starts N replicas with identical settings (API keys, request-state keys, Redis), then
nginx round-robin in front of them (`tests.support.nginx`). Replicas can be restarted on the same
port (rolling restarts); Redis can be killed and restarted on its port with its AOF (outages).
Every load loop in this package is bounded in request count and in time.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.auth.api_keys import digest, new_key
from tests.support.nginx import Nginx, sse_replica_id
from tests.support.plugins import install_test_packs
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer
from tests.support.rpc import call_tool, final
from tests.support.service import ServiceProcess

REQUEST_STATE_KEYS = "fleet-k1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,fleet-k0-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
# principal -> scopes. "limited" is on a small rate-limit tier; everyone else never hits a limit.
PRINCIPALS = {
    "fleet": "guard tasks:read tasks:write conformance",
    "modern": "guard tasks:read tasks:write conformance",
    "limited": "guard tier:small",
    "loader": "guard tasks:read tasks:write",
    "outage": "guard tasks:read tasks:write",
    "fuzzer": "guard tasks:read tasks:write conformance system github:read github:write weather:read",
    "reader": "tasks:read",
    "upstream": "github:read weather:read",
}
KEYS = {name: new_key() for name in PRINCIPALS}
SMALL_TIER = {"capacity": 20, "refill_per_second": 2}
GUARD_META = "io.github.mcp-service/guard"


def api_keys_env() -> str:
    return ",".join(f"sha256:{digest(KEYS[p]).hex()};principal={p};scopes={s}" for p, s in PRINCIPALS.items())


def fleet_env(site: Path, redis_url: str, replicas: int, **extra: str) -> dict[str, str]:
    return {
        **install_test_packs(site),
        "MCPS_PACKS": "guard,tasks,conformance",
        "MCPS_AUTH_DISABLED": "false",
        "MCPS_API_KEYS": api_keys_env(),
        "MCPS_REDIS_URL": redis_url,
        "MCPS_REQUEST_STATE_KEYS": REQUEST_STATE_KEYS,
        "MCPS_RATE_LIMIT_CAPACITY": "1000000",
        "MCPS_RATE_LIMIT_REFILL_PER_SECOND": "100000",
        "MCPS_RATE_LIMIT_TIERS": json.dumps({"small": SMALL_TIER}),
        "MCPS_RATE_LIMIT_REPLICAS": str(replicas),
        "MCPS_IDEMPOTENCY_WAIT_SECONDS": "0.5",
        **extra,
    }


class Replica(ServiceProcess):
    """A service process on a given port (a restarted replica keeps its address)."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        super().__init__(env, log_path)
        if port is not None:
            self.port = port
            self.base_url = f"http://127.0.0.1:{port}"
            self.mcp_url = f"{self.base_url}/mcp"
            self.env["MCPS_PORT"] = str(port)
        # HTTP+SSE: the replica's name in its POST URL, which nginx routes on (`tests.support.nginx`).
        self.env["MCPS_SSE_REPLICA_ID"] = sse_replica_id(self.port)


@dataclass
class Fleet:
    directory: Path
    redis: RedisServer | None  # None on a cluster: the cluster outlives the fleet
    env: dict[str, str]
    size: int
    replicas: list[Replica] = field(default_factory=list)
    nginx: Nginx | None = None
    retired: list[Replica] = field(default_factory=list)
    _generation: int = 0

    def _new_replica(self, port: int | None = None) -> Replica:
        self._generation += 1
        return Replica(self.env, self.directory / f"replica-{self._generation}.log", port)

    def start(self, **nginx_options: Any) -> Fleet:
        self.replicas = [self._new_replica() for _ in range(self.size)]
        for replica in self.replicas:  # start together, then wait: start-ups overlap
            replica.start(wait_ready=False)
        for replica in self.replicas:
            replica.wait_ready(60)
        self.nginx = Nginx(self.directory / "nginx", [r.port for r in self.replicas], **nginx_options).start()
        return self

    @property
    def lb(self) -> Nginx:
        assert self.nginx is not None
        return self.nginx

    @property
    def url(self) -> str:
        return self.lb.base_url

    def by_port(self) -> dict[str, Replica]:
        return {f"127.0.0.1:{r.port}": r for r in self.replicas}

    def restart(self, index: int, *, before_stop: Callable[[Replica], None] | None = None) -> tuple[int, float]:
        """SIGTERM replica ``index``, wait for it to exit, start a new one on its port; (exit status, seconds)."""
        old = self.replicas[index]
        if before_stop is not None:
            before_stop(old)
        started = time.monotonic()
        old.signal(signal.SIGTERM)
        status = old.wait(timeout=60)
        stopped = time.monotonic() - started
        old._log.close()
        self.retired.append(old)
        new = self._new_replica(old.port)
        new.start(wait_ready=True, timeout=60)
        self.replicas[index] = new
        return status, stopped

    def stop(self) -> list[int | None]:
        if self.nginx is not None:
            self.nginx.stop()
        with concurrent.futures.ThreadPoolExecutor(max(1, len(self.replicas))) as pool:
            codes = list(pool.map(lambda r: r.stop(), self.replicas))
        if self.redis is not None:
            self.redis.stop()
        return codes

    def log_records(self) -> list[dict[str, Any]]:
        return [record for r in [*self.retired, *self.replicas] for record in r.log_records()]


FleetFactory = Callable[..., Fleet]


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator[FleetFactory]:
    """Start fleets for one test: ``fleet_factory(3, MCPS_...="...")``; all stopped at teardown."""
    fleets: list[Fleet] = []

    def make(
        size: int = 3,
        *,
        nginx: dict[str, Any] | None = None,
        redis_fsync: str = "everysec",
        cluster: RedisCluster | None = None,
        **extra: str,
    ) -> Fleet:
        directory = tmp_path / f"fleet-{len(fleets)}"
        if cluster is not None:
            fleet = cluster_fleet(directory, cluster, size, **extra)
            fleets.append(fleet)
            return fleet.start(**(nginx or {}))
        redis = RedisServer(directory / "redis", appendonly=True, appendfsync=redis_fsync).start()
        env = fleet_env(directory / "site", redis.url, size, **extra)
        fleet = Fleet(directory, redis, env, size)
        fleets.append(fleet)
        return fleet.start(**(nginx or {}))

    try:
        yield make
    finally:
        for fleet in fleets:
            fleet.stop()


def cluster_fleet(directory: Path, cluster: RedisCluster, size: int, **extra: str) -> Fleet:
    """A fleet (not started) on ``cluster``, under a key prefix of its own."""
    extra = {"MCPS_REDIS_MODE": "cluster", "MCPS_REDIS_KEY_PREFIX": f"fleet-{uuid.uuid4().hex[:8]}:", **extra}
    return Fleet(directory, None, fleet_env(directory / "site", cluster.url, size, **extra), size)


@pytest.fixture(scope="module", params=["redis", "cluster"])
def module_fleet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One three-replica fleet shared by a module's tests (they use their own principals and keys), on a
    Redis of its own, then on the session's Redis Cluster."""
    directory = tmp_path_factory.mktemp("fleet")
    fleet: Fleet
    if request.param == "cluster":
        fleet = cluster_fleet(directory, request.getfixturevalue("redis_cluster"), 3)
    else:
        redis = RedisServer(directory / "redis", appendonly=True).start()
        fleet = Fleet(directory, redis, fleet_env(directory / "site", redis.url, 3), 3)
    try:
        yield fleet.start()
    finally:
        fleet.stop()


# --- raw calls ---------------------------------------------------------------------------------------


def bearer(principal: str) -> str:
    return KEYS[principal]


def rpc(
    url: str,
    tool: str,
    arguments: dict[str, Any] | None = None,
    *,
    principal: str = "fleet",
    modern: bool = False,
    client: httpx2.Client | None = None,
) -> httpx2.Response:
    return call_tool(url, tool, arguments, token=bearer(principal), modern=modern, client=client)


def result_of(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    message = final(response)
    assert "result" in message, message
    result: dict[str, Any] = message["result"]
    return result


def upstream_of(fleet: Fleet, response: httpx2.Response) -> str:
    """Which replica served a response that went through nginx (by its request id in nginx's log)."""
    request_id = response.headers.get("x-request-id")
    for _ in range(50):  # nginx writes the line when the response is complete
        for record in reversed(fleet.lb.access_records()):
            if record.get("request_id") == request_id:
                return str(record["upstream"])
        time.sleep(0.02)
    raise AssertionError(f"request {request_id} not in nginx's access log")


def ready_status(replica: ServiceProcess) -> tuple[int, dict[str, Any]]:
    response = httpx2.get(f"{replica.base_url}/health/ready", timeout=5)
    return response.status_code, response.json()


# --- steady load ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    at: float  # seconds since the load started (when the call was sent)
    tool: str
    era: str
    seconds: float
    status: int | None  # HTTP status; None when no answer (connection error, timeout)
    code: str | None  # None: a successful result; else the structured error code, JSON-RPC error or exception

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.code is None


class Load:
    """Steady calls from ``threads`` clients until stopped, bounded by ``max_calls`` and ``max_seconds``.

    Each call is a raw tools/call in one of the two eras (alternating), to ``cheap`` or, every
    ``write_every``-th call, to ``note_write`` taking ``write_delay`` seconds with a fresh
    idempotency key (a write that is in flight when replicas stop).
    """

    def __init__(
        self,
        url: str,
        *,
        principal: str = "loader",
        threads: int = 6,
        max_calls: int = 5000,
        max_seconds: float = 90.0,
        write_every: int = 4,
        write_delay: float = 0.5,
        pause: float = 0.0,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.principal = principal
        self.threads = threads
        self.max_calls = max_calls
        self.max_seconds = max_seconds
        self.write_every = write_every
        self.write_delay = write_delay
        self.pause = pause
        self.timeout = timeout
        self.outcomes: list[Outcome] = []
        self._stop = False
        self._sent = 0
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._futures: list[concurrent.futures.Future[None]] = []
        self.started = 0.0

    def _worker(self, index: int) -> None:
        http = httpx2.Client(timeout=self.timeout)
        n = 0
        try:
            while not self._stop and time.monotonic() - self.started < self.max_seconds:
                self._sent += 1
                if self._sent > self.max_calls:
                    break
                n += 1
                modern = (index + n) % 2 == 0
                if n % self.write_every == 0:
                    tool = "note_write"
                    args: dict[str, Any] = {
                        "text": "w",
                        "delay": self.write_delay,
                        "idempotency_key": os.urandom(8).hex(),
                    }
                else:
                    tool, args = "cheap", {}
                self.outcomes.append(self._one(http, tool, args, modern))
                if self.pause:
                    time.sleep(self.pause)
        finally:
            http.close()

    def _one(self, http: httpx2.Client, tool: str, args: dict[str, Any], modern: bool) -> Outcome:
        sent = time.monotonic()
        era = "2026-07-28" if modern else "2025-11-25"
        status: int | None = None
        code: str | None
        try:
            response = call_tool(self.url, tool, args, token=KEYS[self.principal], modern=modern, client=http)
            status = response.status_code
            if status != 200:
                code = f"HTTP {status}"
            else:
                message = final(response)
                if "error" in message:
                    code = f"JSON-RPC {message['error'].get('code')}"
                elif message["result"].get("isError"):
                    code = str((message["result"].get("structuredContent") or {}).get("code", "isError"))
                else:
                    code = None
        except Exception as exc:  # a dropped connection, a timeout, an unparsable answer: all failures
            code = type(exc).__name__
        return Outcome(sent - self.started, tool, era, time.monotonic() - sent, status, code)

    def start(self) -> Load:
        self.started = time.monotonic()
        self._pool = concurrent.futures.ThreadPoolExecutor(self.threads)
        self._futures = [self._pool.submit(self._worker, i) for i in range(self.threads)]
        return self

    def stop(self) -> list[Outcome]:
        self._stop = True
        assert self._pool is not None
        for future in self._futures:
            future.result(timeout=self.timeout + 30)
        self._pool.shutdown()
        return self.outcomes

    def summary(self) -> str:
        failed = [o for o in self.outcomes if not o.ok]
        codes: dict[str, int] = {}
        for o in failed:
            codes[str(o.code)] = codes.get(str(o.code), 0) + 1
        slowest = max((o.seconds for o in self.outcomes), default=0.0)
        return f"{len(self.outcomes)} calls, {len(failed)} not ok {codes}, slowest {slowest:.2f}s"
