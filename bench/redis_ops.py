"""Redis cost of a call, and service req/s on one Redis against a Redis Cluster: the sizing figures of
docs/deployment.md ("Sizing Redis").

``ops``: one service process (production defaults: leased rate limit, L1 cache) on a Redis, then on
a 3-primary cluster; for each kind of call, N calls one after another, and the deltas of the
service's own round-trip counter (``mcp_service_backend_command_duration_seconds_count`` by
operation) and of Redis's ``INFO commandstats`` (every command, those run inside scripts included),
each divided by N.

``rps``: the same service on each backend, interleaved (single, cluster, single, cluster...), each
run ``--seconds`` long with ``--clients`` threads making ``create_task`` / ``get_task`` calls; bounded
by time and by ``--max-calls`` per run. A shared machine is noisy: compare medians of several runs.

    .venv/bin/python -m bench.redis_ops ops --calls 200
    .venv/bin/python -m bench.redis_ops rps --seconds 10 --runs 3
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2
import redis
from app.auth.api_keys import digest, new_key
from tests.support.plugins import install_test_packs
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer
from tests.support.rpc import call_tool, final
from tests.support.service import ServiceProcess

KEY = new_key()
METRIC = "mcp_service_backend_command_duration_seconds_count"


def env(site: Path, url: str, mode: str) -> dict[str, str]:
    return {
        **install_test_packs(site),
        "MCPS_PACKS": "guard,tasks",
        "MCPS_AUTH_DISABLED": "false",
        "MCPS_API_KEYS": f"sha256:{digest(KEY).hex()};principal=bench;scopes=guard tasks:read tasks:write",
        "MCPS_REDIS_URL": url,
        "MCPS_REDIS_MODE": mode,
        "MCPS_RATE_LIMIT_CAPACITY": "1000000000",
        "MCPS_RATE_LIMIT_REFILL_PER_SECOND": "1000000",
        "MCPS_LOG_LEVEL": "WARNING",
        "MCPS_ACCESS_LOG": "false",
    }


def round_trips(service: ServiceProcess) -> Counter[str]:
    text = httpx2.get(f"{service.base_url}/metrics", timeout=10).text
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith(METRIC):
            labels, value = line[len(METRIC) :].rsplit(" ", 1)
            op = labels.split('operation="', 1)[1].split('"', 1)[0]
            counts[op] += int(float(value))
    return counts


def commandstats(nodes: list[redis.Redis]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for node in nodes:
        for name, stats in node.info("commandstats").items():
            counts[name.removeprefix("cmdstat_")] += int(stats["calls"])
    return counts


def scenarios(url: str, http: httpx2.Client) -> dict[str, Any]:
    task = final(call_tool(url, "create_task", {"title": "seed"}, token=KEY, client=http))["result"]
    task_id = task["structuredContent"]["id"]
    n = [0]

    def keyed() -> None:
        n[0] += 1
        call_tool(
            url, "note_write", {"text": "w", "idempotency_key": f"k-{time.time_ns()}-{n[0]}"}, token=KEY, client=http
        )

    return {
        "tools/call cheap (read, rate limit only)": lambda: call_tool(url, "cheap", {}, token=KEY, client=http),
        "tools/call get_task": lambda: call_tool(url, "get_task", {"task_id": task_id}, token=KEY, client=http),
        "tools/call list_tasks": lambda: call_tool(url, "list_tasks", {}, token=KEY, client=http),
        "tools/call create_task": lambda: call_tool(url, "create_task", {"title": "t"}, token=KEY, client=http),
        "tools/call note_write + idempotency_key": keyed,
        "tools/call get_task, 2026-07-28 era": lambda: call_tool(
            url, "get_task", {"task_id": task_id}, token=KEY, client=http, modern=True
        ),
    }


def measure_ops(calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with RedisServer(root / "redis") as single, RedisCluster(root / "cluster") as cluster:
            for mode, url, ports in (
                ("single", single.url, [single.port]),
                ("cluster", cluster.url, [n.port for n in cluster.nodes]),
            ):
                nodes = [redis.Redis(port=p) for p in ports]
                service = ServiceProcess(env(root / f"site-{mode}", url, mode), root / f"{mode}.log").start()
                try:
                    with httpx2.Client(timeout=30) as http:
                        print(f"\n## {mode}: per call, over {calls} calls")
                        for name, make_call in scenarios(service.base_url, http).items():
                            make_call()  # warm: scripts loaded, leases taken, topology known
                            before, redis_before = round_trips(service), commandstats(nodes)
                            for _ in range(calls):
                                make_call()
                            trips = round_trips(service) - before
                            commands = commandstats(nodes) - redis_before
                            for ignored in (
                                "info",
                                "ping",
                                "cluster|slots",
                                "cluster|nodes",
                                "cluster|shards",
                                "replconf",
                            ):
                                commands.pop(ignored, None)
                            per = {op: round(c / calls, 2) for op, c in sorted(trips.items())}
                            cmds = {op: round(c / calls, 2) for op, c in sorted(commands.items())}
                            print(
                                f"- {name}: round trips {sum(trips.values()) / calls:.2f} {json.dumps(per)}; "
                                f"Redis commands {sum(commands.values()) / calls:.2f} {json.dumps(cmds)}"
                            )
                finally:
                    service.stop()
                    for node in nodes:
                        node.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc): a figure a shared machine's noise moves less."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(url: str, seconds: float, clients: int, max_calls: int) -> tuple[float, int]:
    done = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(index: int) -> None:
        with httpx2.Client(timeout=30) as http:
            task_id = None
            i = 0
            while time.monotonic() < stop_at:
                with lock:
                    if done[0] >= max_calls:
                        return
                i += 1
                if task_id is None or i % 2 == 0:
                    reply = final(call_tool(url, "create_task", {"title": f"r{index}"}, token=KEY, client=http))
                    task_id = reply["result"]["structuredContent"]["id"]
                else:
                    call_tool(url, "get_task", {"task_id": task_id}, token=KEY, client=http)
                with lock:
                    done[0] += 1

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    return done[0] / (time.monotonic() - started), done[0]


def measure_rps(seconds: float, runs: int, clients: int, max_calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with RedisServer(root / "redis", appendonly=True) as single, RedisCluster(root / "cluster") as cluster:
            services = {
                "single": ServiceProcess(env(root / "site-s", single.url, "single"), root / "s.log").start(),
                "cluster": ServiceProcess(env(root / "site-c", cluster.url, "cluster"), root / "c.log").start(),
            }
            try:
                results: dict[str, list[float]] = {name: [] for name in services}
                cpu: dict[str, list[float]] = {name: [] for name in services}
                for _ in range(runs):
                    for name, service in services.items():
                        assert service.proc is not None
                        before = cpu_seconds(service.proc.pid)
                        rate, calls = one_run(service.base_url, seconds, clients, max_calls)
                        results[name].append(rate)
                        cpu[name].append((cpu_seconds(service.proc.pid) - before) / max(calls, 1) * 1e6)
                for name, values in results.items():
                    print(
                        f"{name}: req/s per run {[round(v) for v in values]}, median {statistics.median(values):.0f}; "
                        f"CPU us/call {[round(v) for v in cpu[name]]}, median {statistics.median(cpu[name]):.0f}"
                    )
            finally:
                for service in services.values():
                    service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ops = sub.add_parser("ops")
    ops.add_argument("--calls", type=int, default=200)
    rps = sub.add_parser("rps")
    rps.add_argument("--seconds", type=float, default=10)
    rps.add_argument("--runs", type=int, default=3)
    rps.add_argument("--clients", type=int, default=8)
    rps.add_argument("--max-calls", type=int, default=20000)
    args = parser.parse_args()
    if args.command == "ops":
        measure_ops(min(args.calls, 2000))
    else:
        measure_rps(min(args.seconds, 60), min(args.runs, 10), min(args.clients, 64), args.max_calls)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
