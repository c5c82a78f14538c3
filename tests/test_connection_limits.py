"""A connection is bounded before its request is read: head size, head read time, connection count.

Issue 19 H1 and M1, over real loopback sockets against the service as a child process, with each
HTTP parser uvicorn offers. Socket timeouts only bound a test that would otherwise hang: nothing
here measures how fast the service is.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx2
import pytest

from tests.conftest import ServiceFactory
from tests.support.rpc import legacy_headers
from tests.support.service import ServiceProcess

MAX_HEADER_BYTES = 16 * 1024
HEADER_TIMEOUT_SECONDS = 1
HUGE_HEAD_BYTES = 64 * 1024 * 1024  # what took the service minutes to parse before the cap
CHUNK = b"a" * (64 * 1024)
REFUSAL = b"HTTP/1.1 431 "
HANG_BOUND_SECONDS = 30  # far above any real answer: reached only if the service does not act


@pytest.fixture(scope="module", params=["httptools", "h11"])
def service(request: pytest.FixtureRequest, module_service_factory: ServiceFactory) -> ServiceProcess:
    env = {
        "MCPS_UVICORN_HTTP": request.param,
        "MCPS_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "MCPS_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_SECONDS),
    }
    return module_service_factory(env)


@pytest.fixture
def conn(service: ServiceProcess) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", service.port), timeout=HANG_BOUND_SECONDS) as sock:
        yield sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the service sends until it closes the connection (a reset counts as closed)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def head(extra: bytes = b"") -> bytes:
    return b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra


def live(service: ServiceProcess) -> int:
    return httpx2.get(f"{service.base_url}/health/live", timeout=HANG_BOUND_SECONDS).status_code


# --- H1: the size of a request head -----------------------------------------------------------


def test_a_huge_header_is_refused_and_the_service_keeps_answering(service: ServiceProcess, conn: socket.socket) -> None:
    sent = 0
    try:
        conn.sendall(head(b"X-Big: "))
        while sent < HUGE_HEAD_BYTES:
            conn.sendall(CHUNK)
            sent += len(CHUNK)
        conn.sendall(b"\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the service closed the connection: the refusal
    answer = read_until_closed(conn)
    assert sent < HUGE_HEAD_BYTES or answer.startswith(REFUSAL), answer[:80]
    assert not answer or answer.startswith(REFUSAL), answer[:80]
    assert live(service) == 200


def test_a_head_over_the_cap_gets_a_refusal_and_a_closed_connection(
    service: ServiceProcess, conn: socket.socket
) -> None:
    conn.sendall(head(b"X-Big: " + b"a" * (2 * MAX_HEADER_BYTES) + b"\r\n\r\n"))
    answer = read_until_closed(conn)
    assert answer.startswith(REFUSAL), answer[:80]
    assert b"connection: close" in answer.lower()


def test_heads_under_the_cap_and_large_bodies_pass(service: ServiceProcess) -> None:
    response = httpx2.get(
        f"{service.base_url}/health/live", headers={"X-Big": "a" * (MAX_HEADER_BYTES // 2)}, timeout=10
    )
    assert response.status_code == 200
    # The cap is on the head only: a body many times its size is read (and answered by the app).
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "a" * (8 * MAX_HEADER_BYTES)}}
    response = httpx2.post(service.mcp_url, headers=legacy_headers(), json=body, timeout=10)
    assert response.status_code == 200, response.text


# --- M1: the time a request head may take -----------------------------------------------------


def test_a_partial_request_is_closed_after_the_header_timeout(service: ServiceProcess, conn: socket.socket) -> None:
    conn.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127")
    assert read_until_closed(conn) == b""  # closed, nothing answered (a hang fails on the socket timeout)


def test_a_silent_connection_is_closed_after_the_header_timeout(conn: socket.socket) -> None:
    assert read_until_closed(conn) == b""


def test_a_kept_alive_connections_next_partial_request_is_closed(service: ServiceProcess, conn: socket.socket) -> None:
    conn.sendall(head(b"\r\n"))
    first = b""
    while b'"alive"' not in first:
        chunk = conn.recv(65536)
        assert chunk, first
        first += chunk
    assert first.startswith(b"HTTP/1.1 200"), first[:80]
    # Well within the keep-alive timeout (30 s): only the header timeout can close this one.
    conn.sendall(b"GET /health/live HTTP/1.1\r\nHo")
    assert read_until_closed(conn) == b""


# --- M1: the number of connections ------------------------------------------------------------


def test_connections_past_the_cap_are_refused_with_503(service_factory: ServiceFactory) -> None:
    cap = 4
    service = service_factory({"MCPS_MAX_CONNECTIONS": str(cap), "MCPS_HEADER_TIMEOUT_SECONDS": "120"})
    idle = [socket.create_connection(("127.0.0.1", service.port), timeout=HANG_BOUND_SECONDS) for _ in range(cap)]
    try:
        assert status_within(service, 503) == 503  # the idle ones count once the service has accepted them
    finally:
        for sock in idle:
            sock.close()
    assert status_within(service, 200) == 200  # and stop counting once closed


def status_within(service: ServiceProcess, wanted: int) -> int:
    """Poll /health/live on fresh connections until it answers ``wanted`` (or the bound passes)."""
    deadline = time.monotonic() + HANG_BOUND_SECONDS
    status = 0
    while time.monotonic() < deadline:
        with httpx2.Client() as client:
            status = client.get(f"{service.base_url}/health/live", timeout=HANG_BOUND_SECONDS).status_code
        if status == wanted:
            break
        time.sleep(0.1)
    return status
