"""The real service as a child process (``python -m app``) on a free loopback port.

Tests talk to it over HTTP exactly as a remote client would; its JSON log lines are captured
to a file so tests can assert on them (redaction, request ids, shutdown sequence).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx2

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    def __init__(self, env: Mapping[str, str] | None, log_path: Path, args: list[str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.mcp_url = f"{self.base_url}/mcp"
        self.log_path = log_path
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MCPS_")},
            "MCPS_HOST": "127.0.0.1",
            "MCPS_PORT": str(self.port),
            "MCPS_DRAIN_DELAY_SECONDS": "0",
            "MCPS_AUTH_DISABLED": "true",
            "MCPS_PACKS": "",  # tests name the packs they use
            "MCPS_SHUTDOWN_TIMEOUT_SECONDS": "10",
            "PYTHONUNBUFFERED": "1",
            # "{port}" in a value becomes this service's port (for URLs naming the service itself).
            **{key: value.replace("{port}", str(self.port)) for key, value in (env or {}).items()},
        }
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True, timeout: float = 30.0) -> ServiceProcess:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", *self.args],
            cwd=str(self.log_path.parent),  # no stray .env from the repo root
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if httpx2.get(f"{self.base_url}/health/ready", timeout=1.0).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"service not ready within {timeout}s:\n{self.log_text()}")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def records_when(
        self, ready: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """The log records once ``ready`` holds for them (lines written after a response may lag it)."""
        deadline = time.monotonic() + timeout
        records = self.log_records()
        while not ready(records) and time.monotonic() < deadline:
            time.sleep(0.05)
            records = self.log_records()
        return records

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                records.append({"unparsed": line})
        return records
