"""A real Redis Cluster on loopback: 3 primaries and 3 replicas of Debian's ``redis-server``, joined by
``redis-cli --cluster create ... --cluster-replicas 1``, for the cluster-mode tests.

Each node is a `RedisServer` (free port, temp dir, stopped by its PID) with cluster mode on and a
small ``cluster-node-timeout``, so a failover (`fail_primary`) completes in about a second or two.
``extra_args`` (e.g. ACL users) go to every node; ``tls`` (a cert and key, the cert its own CA)
makes every node TLS-only, its cluster bus and replication included.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tests.support.redis_server import RedisServer, free_port

REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
NODE_TIMEOUT_MS = 1000


class TlsNode(RedisServer):
    """A TLS-only node: ``--port 0``, its port is the TLS port; answering means a TLS PING works."""

    def __init__(self, directory: Path, cert: Path, key: Path, extra_args: list[str]) -> None:
        tls = [
            "--tls-port", "0",  # replaced in args(): the port is only known after __init__
            "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
            "--tls-auth-clients", "no", "--tls-cluster", "yes", "--tls-replication", "yes",
        ]  # fmt: skip
        super().__init__(directory, extra_args=[*tls, *extra_args])
        self.cert = cert

    def args(self) -> list[str]:
        args = super().args()
        args[args.index("--port") + 1] = "0"
        args[args.index("--tls-port") + 1] = str(self.port)
        return args

    def _answers_ping(self) -> bool:
        done = subprocess.run(
            [REDIS_CLI, "--tls", "--cacert", str(self.cert), "-p", str(self.port), "PING"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return done.stdout.strip() == "PONG" or "NOAUTH" in done.stdout + done.stderr


class RedisCluster:
    def __init__(
        self,
        directory: Path,
        *,
        primaries: int = 3,
        replicas_per_primary: int = 1,
        extra_args: list[str] | None = None,
        cli_auth: list[str] | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.directory = directory
        self.extra_args = extra_args or []
        self.cli_auth = cli_auth or []  # e.g. ["--user", "svc", "--pass", "..."] for redis-cli
        self.tls = tls
        if tls is not None:
            self.cli_auth = [*self.cli_auth, "--tls", "--cacert", str(tls[0])]
        count = primaries * (1 + replicas_per_primary)
        self.replicas_per_primary = replicas_per_primary
        self.nodes = [self._node(directory / f"node{i}") for i in range(count)]

    def _node(self, directory: Path) -> RedisServer:
        if self.tls is None:
            return RedisServer(directory, extra_args=self._node_args(directory))
        return TlsNode(directory, *self.tls, self._node_args(directory))

    def _node_args(self, directory: Path) -> list[str]:
        return [
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(directory / "nodes.conf"),
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            # The bus port on a free port of its own (not port + 10000, which may be taken or too high).
            "--cluster-port", str(free_port()),
            # Let a replica take over even if it lost contact with its primary for a while.
            "--cluster-replica-validity-factor", "0",
            *self.extra_args,
        ]  # fmt: skip

    @property
    def url(self) -> str:
        """A URL naming one node: the client discovers the others."""
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.nodes[0].port}?ssl_ca_certs={self.tls[0]}"
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def cli(self, port: int, *args: str, timeout: float = 10.0) -> str:
        result = subprocess.run(
            [REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *self.cli_auth, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return result.stdout

    def start(self, timeout: float = 30.0) -> RedisCluster:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run(
            [REDIS_CLI, *self.cli_auth, "--cluster", "create", *addresses,
             "--cluster-replicas", str(self.replicas_per_primary), "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )  # fmt: skip
        self.wait_ok(timeout)
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node says ``cluster_state:ok`` and every slot is served."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._node_ok(node) for node in self.nodes if node.running):
                return
            time.sleep(0.1)
        raise TimeoutError("cluster not ok within the timeout")

    def _node_ok(self, node: RedisServer) -> bool:
        try:
            info = self.cli(node.port, "CLUSTER", "INFO", timeout=2)
        except (subprocess.SubprocessError, OSError):
            return False
        return "cluster_state:ok" in info and "cluster_slots_ok:16384" in info

    def roles(self) -> dict[int, str]:
        """Port -> ``master`` / ``slave`` as the running nodes see themselves."""
        roles = {}
        for node in self.nodes:
            if node.running:
                roles[node.port] = self.cli(node.port, "ROLE", timeout=2).split("\n", 1)[0].strip()
        return roles

    def node_for_key(self, key: str) -> RedisServer:
        """The primary currently serving ``key``'s slot (its own ``CLUSTER NODES`` line says so)."""
        slot = int(self.cli(self.nodes[0].port, "CLUSTER", "KEYSLOT", key).strip())
        for node in self.nodes:
            if not node.running:
                continue
            for entry in self.cli(node.port, "CLUSTER", "NODES", timeout=2).split("\n"):
                fields = entry.split()
                if len(fields) > 2 and "myself" in fields[2] and "master" in fields[2] and _covers(entry, slot):
                    return node
        raise LookupError(f"no running primary serves slot {slot}")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(kill=True)

    def __enter__(self) -> RedisCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _covers(nodes_line: str, slot: int) -> bool:
    """Does this ``CLUSTER NODES`` line's slot ranges include ``slot``?"""
    for part in nodes_line.split()[8:]:
        if part.startswith("["):  # a slot being migrated
            continue
        low, _, high = part.partition("-")
        if int(low) <= slot <= int(high or low):
            return True
    return False
