"""Issue 19's findings, each driven over loopback against the real service: held resources are
capped, refusals are structured, keys and names cannot collide, and no answer or log line carries
what a caller sent in bulk."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from app.auth.api_keys import digest, new_key
from tests.conftest import ServiceFactory
from tests.support.rpc import call_tool, legacy_headers, modern_headers, modern_meta, tool_result
from tests.support.service import ServiceProcess
from tests.test_guard_chain import guard_env

ALICE, BOB, READER, TASK_READER = new_key(), new_key(), new_key(), new_key()
CAROL, CAROL_NOTE_WRITE, DAVE, DAVE_X = new_key(), new_key(), new_key(), new_key()
PRINCIPALS = (
    (ALICE, "alice", "guard"),
    (BOB, "bob", "guard"),
    (READER, "reader", "guard"),
    (TASK_READER, "task-reader", "tasks:read"),
    # Principal ids that end where another's record key would continue (L4).
    (CAROL, "carol", "guard"),
    (CAROL_NOTE_WRITE, "carol:note_write", "guard"),
    (DAVE, "dave", "admin"),
    (DAVE_X, "dave:x", "guard"),
)
KEYS = ",".join(f"sha256:{digest(key).hex()};principal={name};scopes={scopes}" for key, name, scopes in PRINCIPALS)
ACKNOWLEDGED = "notifications/subscriptions/acknowledged"


def env(site: Path, **extra: str) -> dict[str, str]:
    return guard_env(site, MCPS_PACKS="guard,tasks", MCPS_API_KEYS=KEYS, MCPS_LOG_LEVEL="DEBUG", **extra)


@pytest.fixture(scope="module")
def service(module_service_factory: ServiceFactory, tmp_path_factory: pytest.TempPathFactory) -> ServiceProcess:
    limits = {"MCPS_MAX_LISTEN_STREAMS_PER_PRINCIPAL": "2", "MCPS_MAX_LISTEN_STREAMS": "3"}
    return module_service_factory(env(tmp_path_factory.mktemp("site"), **limits))


@pytest.fixture(scope="module")
def tight(module_service_factory: ServiceFactory, tmp_path_factory: pytest.TempPathFactory) -> ServiceProcess:
    """One token per principal (and tool), refilled far slower than a test runs."""
    limits = {
        "MCPS_RATE_LIMIT_CAPACITY": "1",
        "MCPS_RATE_LIMIT_REFILL_PER_SECOND": "0.0001",
        "MCPS_RATE_LIMIT_PER_TOOL": "true",
    }
    return module_service_factory(env(tmp_path_factory.mktemp("site"), **limits))


# --- subscriptions/listen --------------------------------------------------------------------


def _listen_body(uris: list[str] | None = None) -> dict[str, Any]:
    notifications: dict[str, Any] = {"toolsListChanged": True}
    if uris is not None:
        notifications["resourceSubscriptions"] = uris
    params = {"notifications": notifications, "_meta": modern_meta()}
    return {"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen", "params": params}


def _first_message(lines: Iterator[str]) -> dict[str, Any]:
    """The first JSON-RPC message of a listen answer, SSE or JSON, read without waiting for the end."""
    for line in lines:
        text = line[5:] if line.startswith("data:") else line
        if text.strip().startswith("{"):
            message: dict[str, Any] = json.loads(text)
            return message
    raise AssertionError("the listen answer ended without a message")


@contextmanager
def listen(service: ServiceProcess, token: str, uris: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Open a listen stream and yield its first message (the ack, or the refusal); closed on exit."""
    headers = {**modern_headers("subscriptions/listen"), "authorization": f"Bearer {token}"}
    with (
        httpx2.Client(timeout=httpx2.Timeout(20.0)) as client,
        client.stream("POST", service.mcp_url, headers=headers, json=_listen_body(uris)) as response,
    ):
        lines = response.iter_lines()  # held: a dropped line iterator closes the response, ending the stream
        yield _first_message(lines)


def refusal(message: dict[str, Any]) -> dict[str, Any]:
    assert "error" in message, message
    data: dict[str, Any] = message["error"]["data"]
    return data


def test_listen_streams_are_capped_per_principal_and_in_total(service: ServiceProcess) -> None:
    """M2: past its own cap a principal gets RATE_LIMITED, past the process total everyone gets
    UNAVAILABLE, both with a retry hint, never the SDK's INTERNAL_ERROR; a closed stream frees its slot."""
    with ExitStack() as streams:
        first = streams.enter_context(listen(service, ALICE))
        assert first["method"] == ACKNOWLEDGED
        assert streams.enter_context(listen(service, ALICE))["method"] == ACKNOWLEDGED
        with listen(service, ALICE) as third:
            error = refusal(third)
        assert error["code"] == "RATE_LIMITED"
        assert error["retryable"] is True
        assert error["retry_after_ms"] > 0
        assert streams.enter_context(listen(service, BOB))["method"] == ACKNOWLEDGED
        with listen(service, BOB) as past_total:
            error = refusal(past_total)
        assert error["code"] == "UNAVAILABLE"
        assert error["retryable"] is True
        assert error["retry_after_ms"] > 0
    # Every stream above is closed: the slots come back once the server sees the clients gone.
    for _ in range(100):
        with listen(service, ALICE) as again:
            if "method" in again:
                break
        time.sleep(0.1)
    assert again["method"] == ACKNOWLEDGED


def test_listen_counts_against_the_rate_limit(tight: ServiceProcess) -> None:
    """M2: each listen takes a token; the next one past the bucket is RATE_LIMITED."""
    with listen(tight, BOB) as first:
        assert first["method"] == ACKNOWLEDGED
    with listen(tight, BOB) as second:
        error = refusal(second)
    assert error["code"] == "RATE_LIMITED"
    assert error["details"]["limit"] == 1


def test_listen_refuses_resources_the_caller_may_not_read(tight: ServiceProcess) -> None:
    """L1: a resource subscription is held to the resource's scopes, like resources/read."""
    with listen(tight, READER, ["task://t_0123456789abcdef"]) as message:
        error = refusal(message)
    assert message["error"]["code"] == -32003
    assert error["code"] == "PERMISSION_DENIED"
    assert error["details"]["missing_scopes"] == ["tasks:read"]
    with listen(tight, TASK_READER, ["task://t_0123456789abcdef"]) as allowed:
        assert allowed["method"] == ACKNOWLEDGED


def test_listen_names_a_bounded_number_of_resources(tight: ServiceProcess) -> None:
    """Each resource a stream names is checked and held for the stream's life: at most 1,000."""
    uris = [f"task://t_{n:016x}" for n in range(1001)]
    with listen(tight, TASK_READER, uris) as message:
        error = refusal(message)
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["limit"] == 1000


# --- keys that cannot collide ----------------------------------------------------------------


def test_idempotency_keys_of_different_principals_never_meet(service: ServiceProcess) -> None:
    """L4: ("carol:note_write", "K9") and ("carol", "note_write:K9") once made the same record key."""
    first = tool_result(
        call_tool(service.base_url, "note_write", {"text": "a", "idempotency_key": "K9"}, token=CAROL_NOTE_WRITE)
    )
    assert not first.get("isError"), first
    other = tool_result(
        call_tool(service.base_url, "note_write", {"text": "b", "idempotency_key": "note_write:K9"}, token=CAROL)
    )
    assert not other.get("isError"), other
    assert other["structuredContent"]["text"] == "b"


def test_rate_limit_buckets_of_different_principals_never_meet(tight: ServiceProcess) -> None:
    """L4: per-tool buckets ("dave", "x:cheap") and ("dave:x", "cheap") once shared one key."""
    call_tool(tight.base_url, "x:cheap", token=DAVE)  # an unknown tool, but its bucket is spent
    result = tool_result(call_tool(tight.base_url, "cheap", token=DAVE_X))
    assert not result.get("isError"), result
    spent = tool_result(call_tool(tight.base_url, "cheap", token=DAVE_X))
    assert spent["structuredContent"]["code"] == "RATE_LIMITED"  # the bucket is real, just its own


def test_permission_denied_does_not_echo_a_huge_tool_name(service: ServiceProcess) -> None:
    """Info: a 100 KB tool name comes back cut, with its length."""
    name = "z" * 100_000
    result = tool_result(call_tool(service.base_url, name, token=BOB))
    error = result["structuredContent"]
    assert error["code"] == "PERMISSION_DENIED"
    assert len(error["message"]) < 300
    assert "100000 characters" in error["message"]


# --- the HTTP edge ---------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", ["NaN", "Infinity", "-Infinity", "1.5", "true", "{}", "[]", "null"])
@pytest.mark.parametrize("era", ["legacy", "modern"])
def test_invalid_jsonrpc_ids_get_invalid_request(service: ServiceProcess, request_id: str, era: str) -> None:
    """L9: an id that is not a string or an integer gets -32600 with id null, never an empty 202."""
    if era == "modern":
        headers = modern_headers("tools/list")
        params = f', "params": {{"_meta": {json.dumps(modern_meta())}}}'
    else:
        headers = legacy_headers()
        params = ""
    body = f'{{"jsonrpc": "2.0", "id": {request_id}, "method": "tools/list"{params}}}'
    headers["authorization"] = f"Bearer {ALICE}"
    response = httpx2.post(service.mcp_url, headers=headers, content=body.encode(), timeout=20)
    assert response.status_code == 400, (response.status_code, response.text)
    answer = response.json()
    assert (answer["id"], answer["error"]["code"]) == (None, -32600)


def test_notifications_still_get_202(service: ServiceProcess) -> None:
    body = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    headers = {**legacy_headers(), "authorization": f"Bearer {ALICE}"}
    response = httpx2.post(service.mcp_url, headers=headers, json=body, timeout=20)
    assert (response.status_code, response.content) == (202, b"")


def test_host_allowlist_port_wildcard_matches_a_port_not_a_prefix(service: ServiceProcess) -> None:
    """Info: ``127.0.0.1:*`` once let ``127.0.0.1:<port>.evil.example`` through (the SDK's prefix match)."""
    headers = {**legacy_headers(host=f"127.0.0.1:{service.port}.evil.example"), "authorization": f"Bearer {ALICE}"}
    response = httpx2.post(service.mcp_url, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 421
    assert response.json()["error"] == {"code": -32600, "message": "Invalid Host header"}
    good = {**legacy_headers(host=f"127.0.0.1:{service.port}"), "authorization": f"Bearer {ALICE}"}
    listed = httpx2.post(service.mcp_url, headers=good, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert listed.status_code == 200


def _longest_line(service: ServiceProcess, marker: str) -> int:
    records = service.records_when(lambda rs: any(marker in r.get("message", "") for r in rs))
    lengths = [len(r["message"]) for r in records if marker in r.get("message", "")]
    assert lengths, f"no {marker!r} line logged"
    return max(lengths)


def test_refused_host_and_origin_are_logged_cut(service: ServiceProcess) -> None:
    """L2: a 100 KB Host (and an 8 KB Origin) reach the log as one short line each."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    auth = {"authorization": f"Bearer {ALICE}"}
    host = httpx2.post(service.mcp_url, headers={**legacy_headers(host="h" * 100_000), **auth}, json=body)
    assert host.status_code in (421, 431)  # 431: a header cap in front got there first
    origin = httpx2.post(service.mcp_url, headers={**legacy_headers(origin="http://" + "o" * 8000), **auth}, json=body)
    assert origin.status_code == 403
    assert _longest_line(service, "Invalid Origin header") < 400
    if host.status_code == 421:
        assert _longest_line(service, "Invalid Host header") < 400


def test_debug_logging_writes_no_response_chunks(service: ServiceProcess) -> None:
    """L8: at DEBUG, sse_starlette once logged every chunk of every answer, tenant data included."""
    secret = "tenant-data-4242"
    result = tool_result(call_tool(service.base_url, "note_write", {"text": secret}, token=ALICE))
    assert result["structuredContent"]["text"] == secret
    records = service.records_when(lambda rs: any(r.get("logger") == "mcp_service.access" for r in rs))
    assert any(r.get("level") == "DEBUG" for r in records)  # DEBUG is on
    assert not [r for r in records if r.get("logger", "").startswith("sse_starlette")]
    assert secret not in service.log_text()
