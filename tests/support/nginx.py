"""Debian's nginx as a round-robin load balancer on loopback, in a temp dir, for fleet tests.

No affinity (plain round robin over the replicas), passive health (``max_fails`` / ``fail_timeout``:
a replica that refuses connections or answers 503 is skipped for a while), SSE passed through
unbuffered, ``X-Request-Id`` set from nginx's ``$request_id`` so log lines join across the hop. With
``authorization`` set, nginx adds that ``Authorization`` header to every request: how a client that
cannot send a token (the conformance suite's CLI has no option for one) reaches an authenticated service.

Retries (``proxy_next_upstream``), and why they stop where they do:

- ``error timeout http_503`` for every request that *never reached* a replica: nginx passes a
  request to the next replica on a connection error or a connect timeout whatever its method,
  because nothing was sent. That is what covers a replica that is down or restarting.
- After a request was sent, nginx retries only idempotent methods (GET/HEAD: SSE streams,
  probes) unless ``non_idempotent`` is added. Every MCP message is a POST, and a ``tools/call``
  may be a write: with ``non_idempotent``, a ``timeout`` or a connection lost mid-call would run it
  a second time on another replica. So the default here does NOT retry POSTs once sent, and a
  rolling restart takes a replica out of the balancer *before* it is stopped (`set_down` +
  reload), exactly as Kubernetes removes a terminating pod from the Service's endpoints while
  its preStop sleep runs. The replica then drains and stops with nobody routing to it.
- ``retry_post_on_503=True`` is the alternative without an orchestrator: ``error http_503
  non_idempotent`` (no ``timeout``). The service's 503 (after its drain delay) is answered by the
  edge gate *before* the request reaches the MCP layer, so re-sending it is safe; the remaining
  risk is a replica dying mid-call (``error`` after send), which is then re-run elsewhere. Use it
  only when every write tool is idempotent or takes an idempotency key.

A reload has a cost of its own on the client side: the old worker closes its idle keep-alive
connections *to clients*, and a client that sends a request on one at that instant sees the
connection drop with no answer (an httpx ``RemoteProtocolError``; RFC 9112 section 9.3.1 lets it
resend only what it knows was not processed). Kubernetes endpoints, ingress-nginx (which updates
upstreams from Lua without reloading), Envoy and cloud load balancers change backends without
touching client connections; with nginx OSS, either accept that (``client_keepalive=False`` shows
the service side alone) or use the no-reload variant above.

HTTP+SSE (2024-11-05) sessions live in the replica holding their ``GET /sse`` stream, which any
replica may serve. Each replica names itself in the URL it tells the client to POST to
(``/messages/<replica id>/``, ``MCPS_SSE_REPLICA_ID``), and a ``map`` sends ``/messages/<id>/`` to
that replica's own upstream; an unknown id gets a JSON 404 from nginx. Such POSTs are never
retried elsewhere: no other replica holds the session.

nginx OSS has no active health checks, so it never reads ``/health/ready``: readiness is for
orchestrators (Kubernetes endpoints, Fly's proxy), removal from the upstream is the equivalent here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

NGINX = os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"

LOG_FORMAT = (
    '{"time":"$time_iso8601","method":"$request_method","uri":"$request_uri","status":$status,'
    '"upstream":"$upstream_addr","upstream_status":"$upstream_status","request_time":$request_time,'
    '"request_id":"$request_id"}'
)


NO_SUCH_REPLICA = '{"error":"unknown_session","message":"no replica by that name: open a new stream with GET /sse"}'


def sse_replica_id(port: int) -> str:
    """The HTTP+SSE replica id of the replica on ``port`` (stable across restarts on the same port)."""
    return f"r{port}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


class Nginx:
    def __init__(
        self,
        directory: Path,
        backends: Iterable[int],
        *,
        port: int | None = None,
        max_fails: int = 1,
        fail_timeout_seconds: float = 2.0,
        retry_post_on_503: bool = False,
        keepalive: int = 16,
        read_timeout_seconds: float = 120.0,
        client_keepalive: bool = True,
        authorization: str | None = None,
    ) -> None:
        self.directory = directory
        self.authorization = authorization  # set on every proxied request (a client that sends no token)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.backends = list(backends)
        self.down: set[int] = set()
        self.port = port or free_port()
        self.max_fails = max_fails
        self.fail_timeout = fail_timeout_seconds
        self.retry_post_on_503 = retry_post_on_503
        self.keepalive = keepalive
        self.read_timeout = read_timeout_seconds
        self.client_keepalive = client_keepalive
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.directory / "nginx.conf"
        self.access_log = self.directory / "access.log"
        self.error_log = self.directory / "error.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.base_url}/mcp"

    @property
    def next_upstream(self) -> str:
        return "error http_503 non_idempotent" if self.retry_post_on_503 else "error timeout http_503"

    def render(self) -> str:
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails={self.max_fails} fail_timeout={self.fail_timeout:g}s"
            f"{' down' if port in self.down else ''};"
            for port in self.backends
        )
        sse_map = "\n".join(f"        ~^/messages/{sse_replica_id(p)}/ sse_{p};" for p in self.backends)
        sse_upstreams = "\n".join(
            f"    upstream sse_{p} {{\n        server 127.0.0.1:{p};\n        keepalive 4;\n    }}"
            for p in self.backends
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        authorization = f'proxy_set_header Authorization "{self.authorization}";' if self.authorization else ""
        d = self.directory
        return f"""{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {self.error_log} notice;
events {{ worker_connections 1024; }}
http {{
    log_format lb escape=json '{LOG_FORMAT}';
    access_log {self.access_log} lb;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 8m;
    upstream mcp {{
{servers}
        keepalive {self.keepalive};
    }}
    map $uri $sse_upstream {{
        default "";
{sse_map}
    }}
{sse_upstreams}
    keepalive_timeout {"75s" if self.client_keepalive else "0"};
    server {{
        listen 127.0.0.1:{self.port};
        location /messages/ {{
            default_type application/json;
            if ($sse_upstream = "") {{
                return 404 '{NO_SUCH_REPLICA}';
            }}
            proxy_pass http://$sse_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Request-Id $request_id;
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
            proxy_next_upstream off;
        }}
        location / {{
            proxy_pass http://mcp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Request-Id $request_id;
            {authorization}
            proxy_buffering off;
            proxy_request_buffering on;
            proxy_cache off;
            proxy_connect_timeout 1s;
            proxy_read_timeout {self.read_timeout:g}s;
            proxy_send_timeout 30s;
            proxy_next_upstream {self.next_upstream};
            proxy_next_upstream_tries {max(2, len(self.backends))};
            proxy_next_upstream_timeout 15s;
        }}
    }}
}}
"""

    def _write(self) -> None:
        self.conf.write_text(self.render())

    def start(self, timeout: float = 10.0) -> Nginx:
        if not Path(NGINX).exists():
            raise RuntimeError(f"{NGINX} not found: apt-get install -y nginx")
        self._write()
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.directory), "-c", str(self.conf), "-e", str(self.error_log), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {err}\n{self.error_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    if _children(self.proc.pid):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"nginx did not listen within {timeout}s:\n{self.error_text()}")

    def reload(self, timeout: float = 10.0) -> None:
        """Apply the current upstream list: new workers take new requests, old ones finish theirs."""
        assert self.proc is not None
        self._write()
        before = _children(self.proc.pid)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _children(self.proc.pid) - before:
                return
            time.sleep(0.02)
        raise TimeoutError(f"nginx did not reload within {timeout}s:\n{self.error_text()}")

    def set_down(self, port: int, down: bool = True) -> None:
        """Take a replica out of rotation (or put it back), then reload."""
        if down:
            self.down.add(port)
        else:
            self.down.discard(port)
        self.reload()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT)  # graceful: finish proxied requests
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def access_records(self) -> list[dict[str, Any]]:
        records = []
        if self.access_log.exists():
            for line in self.access_log.read_text(errors="replace").splitlines():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    records.append({"unparsed": line})
        return records

    def error_text(self) -> str:
        try:
            return self.error_log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
