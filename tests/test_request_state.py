"""2026-07-28 multi-round-trip requests across replicas: requestState sealed on one, opened on another."""

from __future__ import annotations

from typing import Any

import httpx2

from tests.conftest import ServiceFactory
from tests.support.rpc import final, modern_headers, modern_meta
from tests.support.service import ServiceProcess

TOOL = "test_input_required_result_request_state"
SHARED_KEYS = "k1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,k0-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


def _call(service: ServiceProcess, params: dict[str, Any]) -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": TOOL, "arguments": {}, **params}}
    body["params"]["_meta"] = modern_meta()
    return httpx2.post(service.mcp_url, headers=modern_headers("tools/call", TOOL), json=body)


def _round_trip(first: ServiceProcess, second: ServiceProcess) -> httpx2.Response:
    question = final(_call(first, {}))["result"]
    assert question["resultType"] == "input_required"
    answer = {"confirm": {"action": "accept", "content": {"ok": True}}}
    return _call(second, {"requestState": question["requestState"], "inputResponses": answer})


def test_shared_keys_let_any_replica_continue(service_factory: ServiceFactory) -> None:
    env = {"MCPS_PACKS": "conformance", "MCPS_REQUEST_STATE_KEYS": SHARED_KEYS}
    a, b = service_factory(env), service_factory(env)
    response = _round_trip(a, b)
    assert response.status_code == 200
    assert final(response)["result"]["content"][0]["text"] == "state-ok: confirmation received"
    assert not any("per-process key" in r.get("message", "") for r in a.log_records())


def test_rotated_keys_still_open_old_state(service_factory: ServiceFactory) -> None:
    old = service_factory({"MCPS_PACKS": "conformance", "MCPS_REQUEST_STATE_KEYS": SHARED_KEYS.split(",")[1]})
    rotated = service_factory({"MCPS_PACKS": "conformance", "MCPS_REQUEST_STATE_KEYS": SHARED_KEYS})
    response = _round_trip(old, rotated)
    assert final(response)["result"]["content"][0]["text"] == "state-ok: confirmation received"


def test_per_process_keys_are_rejected_elsewhere_and_warned_about(service_factory: ServiceFactory) -> None:
    a, b = service_factory({"MCPS_PACKS": "conformance"}), service_factory({"MCPS_PACKS": "conformance"})
    response = _round_trip(a, b)
    assert response.status_code == 400
    error = final(response)["error"]
    assert error["code"] == -32602
    assert error["data"] == {"reason": "invalid_request_state"}
    assert any("per-process key" in r.get("message", "") and r["level"] == "WARNING" for r in a.log_records())
