"""Processes for the benchmarks: the full service, its contenders, Redis, the OTLP sink, wrk.

The contenders (`REFERENCES`) are the bare SDK tuned as its docs advise (the reference of every
ratio), the bare SDK at its defaults (for the record) and FastMCP (from its own virtualenv).

Everything binds 127.0.0.1. The server under test is pinned to one core (``SERVER_CPU``), wrk and
the helpers (Redis, OTLP sink, py-spy) to the other (``LOAD_CPU``), with ``taskset``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.auth.api_keys import digest, new_key  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

from bench import bench_pack  # noqa: E402

LUA = ROOT / "bench" / "wrk" / "mcp_call.lua"
SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "0")
LOAD_CPU = os.environ.get("BENCH_LOAD_CPU", "1")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PYTHON = sys.executable
REQUEST_STATE_KEY = "bench-request-state-key-0123456789abcdefghij"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def need(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path=str(Path(sys.executable).parent))
    if path is None:
        raise SystemExit(f"bench: {tool} is missing (scripts/bench installs it: wrk, util-linux, py-spy)")
    return path


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pin(pid: int, cpu: str) -> None:
    """Move a running process (all its threads) to ``cpu``."""
    subprocess.run([need("taskset"), "-a", "-p", "-c", cpu, str(pid)], check=True, stdout=subprocess.DEVNULL)


def taskset(cpu: str, argv: list[str]) -> list[str]:
    return [need("taskset"), "-c", cpu, *argv]


def extra_site(package: str) -> Path:
    """A directory with ``package`` pip-installed into it (once), for variants that add a package."""
    site = ROOT / "results" / "bench" / f"site-{package}"
    if not (site / package).exists():
        subprocess.run(
            [PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(site), package],
            check=True,
        )
    return site


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MCPS_", "OTEL_"))}


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    token: str | None = None
    log_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float = 2.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def call_echo(url: str, token: str | None, era: str = "legacy") -> tuple[int, bytes]:
    headers, body = echo_request(era, token)
    return _post(url, body, headers)


def echo_request(era: str, token: str | None) -> tuple[dict[str, str], bytes]:
    """The headers and body of one ``tools/call echo`` in ``era`` (legacy: handshake era, or modern)."""
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    params: dict[str, Any] = {"name": "echo", "arguments": {"text": "hi"}}
    if era == "modern":
        headers |= {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "echo"}
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    else:
        headers["mcp-protocol-version"] = "2025-11-25"
    if token:
        headers["authorization"] = f"Bearer {token}"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode()
    return headers, body


def wait_answering(server: Server, timeout: float = 30) -> None:
    """Until ``server`` answers HTTP at all (whether it speaks each era is `probe`'s question)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            log = server.log_path.read_text(errors="replace")[-3000:] if server.log_path else ""
            raise SystemExit(f"bench: {server.name} exited with {server.proc.returncode}\n{log}")
        try:
            status, body = call_echo(server.url, server.token)
            if status < 500:
                return
            last = (status, body[:300])
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise SystemExit(f"bench: {server.name} not answering within {timeout}s: {last}")


class Helpers:
    """Redis (AOF on, as in production) and the OTLP sink, pinned to the load core."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis = RedisServer(workdir / "redis", appendonly=True)
        self.otlp_port = free_port()
        self.otlp: subprocess.Popen[bytes] | None = None

    def start(self) -> Helpers:
        self.redis.start()
        assert self.redis.proc is not None
        pin(self.redis.proc.pid, LOAD_CPU)
        self.otlp = subprocess.Popen(
            taskset(LOAD_CPU, [PYTHON, "-m", "bench.otlp_sink", "--port", str(self.otlp_port)]),
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                self.otlp_stats()
                return self
            except OSError:
                time.sleep(0.1)
        raise SystemExit("bench: the OTLP sink did not start")

    def otlp_stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.otlp_port}/stats", timeout=2) as response:
            stats: dict[str, Any] = json.loads(response.read())
            return stats

    def stop(self) -> None:
        if self.otlp is not None and self.otlp.poll() is None:
            self.otlp.terminate()
            self.otlp.wait(10)
        self.redis.stop()


def service_env(
    workdir: Path,
    helpers: Helpers,
    *,
    env_extra: dict[str, str] | None = None,
    tracing: bool = True,
    redis: bool = True,
) -> tuple[dict[str, str], str]:
    """The service's production settings (API keys, Redis rate limit, metrics, tracing, logs) and its key."""
    workdir.mkdir(parents=True, exist_ok=True)
    token = new_key()
    env = {
        **clean_env(),
        **bench_pack.install(workdir / "site"),
        "MCPS_HOST": "127.0.0.1",
        "MCPS_PACKS": "bench",
        "MCPS_API_KEYS": f"sha256:{digest(token).hex()};principal=bench;scopes=bench",
        # A bucket that never refuses, still consulted (one Lua script in Redis) on every call.
        "MCPS_RATE_LIMIT_CAPACITY": "1000000000",
        "MCPS_RATE_LIMIT_REFILL_PER_SECOND": "1000000",
        "MCPS_REQUEST_STATE_KEYS": REQUEST_STATE_KEY,
        "MCPS_ACCESS_LOG": "true",
        "MCPS_MCP_ACCESS_LOG": "true",
        "MCPS_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **(env_extra or {}),
    }
    extra_site = env.pop("BENCH_EXTRA_SITE", None)
    if extra_site:
        env["PYTHONPATH"] = f"{extra_site}:{env['PYTHONPATH']}"
    if redis:
        env["MCPS_REDIS_URL"] = helpers.redis.url
    if tracing:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{helpers.otlp_port}"
        env["OTEL_SERVICE_NAME"] = "mcp-service-bench"
    return env, token


def start_service(
    workdir: Path,
    helpers: Helpers,
    *,
    name: str = "service",
    launcher: list[str] | None = None,
    env_extra: dict[str, str] | None = None,
    log_to: str = "file",
    tracing: bool = True,
    redis: bool = True,
    auth: bool = True,
) -> Server:
    """The full service with its production settings, served by uvicorn on a free port."""
    env, token = service_env(workdir, helpers, env_extra=env_extra, tracing=tracing, redis=redis)
    port = free_port()
    env["MCPS_PORT"] = str(port)
    log_path = workdir / f"{name}.log"
    out = open(log_path if log_to == "file" else os.devnull, "wb")  # noqa: SIM115 (lives as long as the process)
    argv = launcher or [PYTHON, "-m", "app"]
    proc = subprocess.Popen(taskset(SERVER_CPU, argv), cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(name, proc, port, token=token if auth else None, log_path=log_path if log_to == "file" else None)
    wait_answering(server)
    server.extra["ready"] = _ready(port)
    return server


def _ready(port: int) -> Any:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=3) as response:
            return json.loads(response.read())
    except (OSError, ValueError) as exc:
        return {"error": str(exc)}


FASTMCP_PYTHON = ROOT / "bench" / ".venvs" / "fastmcp" / "bin" / "python"

# The contenders the service is measured against, each served the way its docs advise for
# production (sdk-defaults, the first baseline, is kept for the record): argv after the Python.
REFERENCES: dict[str, list[str]] = {
    "sdk-tuned": ["-m", "bench.baseline_server", "--profile", "tuned"],
    "sdk-defaults": ["-m", "bench.baseline_server", "--profile", "defaults"],
    "fastmcp": ["-m", "bench.fastmcp_server"],
}


def start_reference(kind: str, workdir: Path) -> Server:
    """A contender (bare SDK tuned or at defaults, FastMCP) on a free port, pinned to the server core."""
    workdir.mkdir(parents=True, exist_ok=True)
    python = PYTHON
    env = {**clean_env(), "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    if kind == "fastmcp":
        if not FASTMCP_PYTHON.exists():
            raise SystemExit(f"bench: {FASTMCP_PYTHON} is missing: scripts/bench makes FastMCP's own virtualenv")
        python = str(FASTMCP_PYTHON)
        # FastMCP reads FASTMCP_* settings (and a .env in its working directory: workdir has none).
        env = {k: v for k, v in env.items() if not k.startswith("FASTMCP_")}
        env |= {"FASTMCP_LOG_LEVEL": "WARNING", "FASTMCP_CHECK_FOR_UPDATES": "off"}
    port = free_port()
    log_path = workdir / f"{kind}.log"
    out = open(log_path, "wb")  # noqa: SIM115 (lives as long as the process)
    proc = subprocess.Popen(
        taskset(SERVER_CPU, [python, *REFERENCES[kind], "--port", str(port)]),
        cwd=workdir,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    server = Server(kind, proc, port, log_path=log_path)
    wait_answering(server)
    return server


def probe(server: Server, era: str) -> str | None:
    """None if ``server`` answers the benchmark's call correctly in ``era``; else what it answered."""
    try:
        status, body = call_echo(server.url, server.token, era)
    except OSError as exc:
        return f"no answer: {exc}"
    if status == 200 and b'"isError":false' in body:
        return None
    return f"HTTP {status}: {body[:200].decode(errors='replace')}"


def run_wrk(
    server: Server,
    *,
    era: str,
    connections: int,
    duration: float,
    threads: int = 1,
    max_requests: int = 0,
    tool: str = "echo",
) -> dict[str, Any]:
    """One wrk run against ``server``; adds rps, errors and the server's CPU time per request."""
    env = {
        **os.environ,
        "MCP_ERA": era,
        "MCP_TOOL": tool,
        "MCP_TOKEN": server.token or "",
        "MCP_MAX_REQUESTS": str(max_requests),
        "MCP_THREADS": str(threads),
    }
    argv = [need("wrk"), "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "10s"]
    argv += ["-s", str(LUA), server.url]
    cpu_before = cpu_seconds(server.pid)
    started = time.monotonic()
    done = subprocess.run(
        taskset(LOAD_CPU, argv), env=env, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    wall = time.monotonic() - started
    cpu_after = cpu_seconds(server.pid)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"bench: wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    seconds = result["duration_us"] / 1e6
    socket_errors = sum(result["errors"].values())
    result.update(
        server=server.name,
        era=era,
        connections=connections,
        wall_seconds=round(wall, 3),
        rps=result["requests"] / seconds if seconds else 0.0,
        failed=result["bad"] + socket_errors,
        cpu_seconds=round(cpu_after - cpu_before, 3),
        cpu_us_per_request=(cpu_after - cpu_before) * 1e6 / result["requests"] if result["requests"] else None,
        stderr=done.stderr.strip()[:600],
    )
    return result
