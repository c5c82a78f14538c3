"""Long-lived streams over loopback against the real service (issue 19 M1: a GET stream that never ends)."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import httpx2

from tests.conftest import ServiceFactory
from tests.support.rpc import LEGACY_VERSION, legacy_headers, modern_headers, modern_meta

ACKNOWLEDGED = "notifications/subscriptions/acknowledged"


def test_stateless_get_is_refused_with_405_and_a_json_rpc_body(service_factory: ServiceFactory) -> None:
    service = service_factory({"MCPS_TRANSPORT_MODE": "stateless"})
    headers = {**legacy_headers(), "accept": "text/event-stream"}
    response = httpx2.get(service.mcp_url, headers=headers, timeout=10)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    assert body["id"] is None
    assert body["error"]["code"] == -32600
    assert "stateless" in body["error"]["message"]
    # POST is still served on the same path.
    post = httpx2.post(service.mcp_url, headers=legacy_headers(), json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert post.status_code == 200


def _read_listen(
    url: str, messages: list[dict[str, Any]], errors: list[BaseException], comments: list[str] | None = None
) -> threading.Thread:
    """Open a listen stream and collect its JSON-RPC messages (and its SSE comment lines, into
    ``comments`` when given) until the server ends the response."""
    body = {
        "jsonrpc": "2.0",
        "id": "listen-1",
        "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": True}, "_meta": modern_meta()},
    }

    def run() -> None:
        try:
            with (
                httpx2.Client(timeout=httpx2.Timeout(60.0)) as client,
                client.stream("POST", url, headers=modern_headers("subscriptions/listen"), json=body) as response,
            ):
                for line in response.iter_lines():
                    if line.startswith(":"):
                        if comments is not None:
                            comments.append(line)
                        continue
                    text = line[5:] if line.startswith("data:") else line
                    if text.strip().startswith("{"):
                        messages.append(json.loads(text))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_shutdown_ends_listen_streams_with_their_final_result(service_factory: ServiceFactory) -> None:
    """L3: an open listen stream no longer holds shutdown for the whole timeout, is ended with the
    SDK's final result, and leaves no traceback. The bound is "does not hang", not a timing claim."""
    drain = 1.0
    service = service_factory({"MCPS_DRAIN_DELAY_SECONDS": str(drain), "MCPS_SHUTDOWN_TIMEOUT_SECONDS": "30"})
    messages: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    thread = _read_listen(service.mcp_url, messages, errors)
    deadline = time.monotonic() + 10
    while not messages and time.monotonic() < deadline:
        time.sleep(0.02)
    assert messages, "no acknowledgement within 10 s"
    assert messages[0]["method"] == ACKNOWLEDGED, messages

    service.signal(signal.SIGTERM)
    assert service.wait(timeout=drain + 10) == 0
    thread.join(10)
    assert not errors, errors
    final = messages[-1]
    assert final["id"] == "listen-1"
    assert "result" in final, final
    assert "Exception in ASGI application" not in service.log_text()
    assert "stopped cleanly" in [record.get("message", "") for record in service.log_records()]


def _open_session(url: str) -> str:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    response = httpx2.post(url, headers=legacy_headers(), json=initialize, timeout=10)
    assert response.status_code == 200
    session = response.headers["mcp-session-id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    headers = legacy_headers(**{"mcp-session-id": session})
    assert httpx2.post(url, headers=headers, json=initialized, timeout=10).status_code == 202
    return session


def test_shutdown_ends_stateful_get_streams_cleanly(service_factory: ServiceFactory) -> None:
    """L3: a session's open GET stream is ended (a clean end of the response, not a reset) when the
    process stops accepting, so shutdown does not wait out its timeout and logs no traceback."""
    drain = 1.0
    env = {"MCPS_TRANSPORT_MODE": "stateful", "MCPS_DRAIN_DELAY_SECONDS": str(drain)}
    service = service_factory({**env, "MCPS_SHUTDOWN_TIMEOUT_SECONDS": "30"})
    session = _open_session(service.mcp_url)
    opened = threading.Event()
    outcome: dict[str, Any] = {}

    def read() -> None:
        headers = {**legacy_headers(**{"mcp-session-id": session}), "accept": "text/event-stream"}
        try:
            with (
                httpx2.Client(timeout=httpx2.Timeout(60.0)) as client,
                client.stream("GET", service.mcp_url, headers=headers) as response,
            ):
                outcome["status"] = response.status_code
                opened.set()
                outcome["lines"] = list(response.iter_lines())
        except BaseException as exc:
            outcome["error"] = exc
            opened.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    assert opened.wait(10)
    assert outcome.get("status") == 200, outcome

    service.signal(signal.SIGTERM)
    assert service.wait(timeout=drain + 10) == 0
    thread.join(10)
    assert "error" not in outcome, outcome.get("error")
    assert "lines" in outcome  # the response ended normally
    assert "Exception in ASGI application" not in service.log_text()


# --- keep-alive comments (MCPS_STREAM_KEEPALIVE_SECONDS) ------------------------------------------

KEEPALIVE = {"MCPS_STREAM_KEEPALIVE_SECONDS": "0.3"}


def _first_comment(response: httpx2.Response) -> list[str]:
    """The stream's lines up to and including its first keep-alive comment (the read is time-bounded)."""
    lines: list[str] = []
    for line in response.iter_lines():
        lines.append(line)
        if line.startswith(": keep-alive"):
            return lines
    raise AssertionError(f"the stream ended without a keep-alive comment: {lines}")


def test_a_silent_listen_stream_gets_keep_alive_comments(service_factory: ServiceFactory) -> None:
    service = service_factory(KEEPALIVE)
    body = {
        "jsonrpc": "2.0",
        "id": "listen-1",
        "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": True}, "_meta": modern_meta()},
    }
    with (
        httpx2.Client(timeout=httpx2.Timeout(10.0)) as client,
        client.stream("POST", service.mcp_url, headers=modern_headers("subscriptions/listen"), json=body) as response,
    ):
        assert response.status_code == 200
        lines = _first_comment(response)
    assert any(ACKNOWLEDGED in line for line in lines)  # the stream's own messages come first, untouched
    assert "Exception in ASGI application" not in service.log_text()


def test_a_silent_session_get_stream_gets_keep_alive_comments(service_factory: ServiceFactory) -> None:
    service = service_factory({**KEEPALIVE, "MCPS_TRANSPORT_MODE": "stateful"})
    session = _open_session(service.mcp_url)
    headers = {**legacy_headers(**{"mcp-session-id": session}), "accept": "text/event-stream"}
    with (
        httpx2.Client(timeout=httpx2.Timeout(10.0)) as client,
        client.stream("GET", service.mcp_url, headers=headers) as response,
    ):
        assert response.status_code == 200
        lines = _first_comment(response)
    assert lines[-1] == ": keep-alive"
    # The session still works after the client went away mid-stream.
    ping = {"jsonrpc": "2.0", "id": 9, "method": "ping"}
    answer = httpx2.post(service.mcp_url, headers=legacy_headers(**{"mcp-session-id": session}), json=ping, timeout=10)
    assert answer.status_code == 200
    assert "Exception in ASGI application" not in service.log_text()


def test_no_keep_alive_comments_when_turned_off(service_factory: ServiceFactory) -> None:
    """0 turns ours off; the listen stream stays silent until the server ends it (the SDK's own pings
    come every 15 s, past this test)."""
    service = service_factory({"MCPS_STREAM_KEEPALIVE_SECONDS": "0", "MCPS_DRAIN_DELAY_SECONDS": "0"})
    messages: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    comments: list[str] = []
    thread = _read_listen(service.mcp_url, messages, errors, comments)
    deadline = time.monotonic() + 10
    while not messages and time.monotonic() < deadline:
        time.sleep(0.02)
    assert messages, "no acknowledgement within 10 s"
    time.sleep(1.5)  # five intervals of the other tests' keep-alive
    service.signal(signal.SIGTERM)
    assert service.wait(timeout=15) == 0
    thread.join(10)
    assert not errors, errors
    assert comments == []
