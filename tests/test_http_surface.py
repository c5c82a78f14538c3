"""The HTTP surface around /mcp: probes, metrics, Host/Origin checks, bad input, request ids."""

from __future__ import annotations

import json

import httpx2
import pytest

from tests.conftest import ServiceFactory
from tests.support.metrics import sample
from tests.support.rpc import final, legacy_headers, modern_headers, modern_meta
from tests.support.service import ServiceProcess


@pytest.fixture(scope="module")
def service(module_service_factory: ServiceFactory) -> ServiceProcess:
    return module_service_factory({"MCPS_PACKS": "conformance", "MCPS_ALLOWED_ORIGINS": "https://app.example.com"})


def test_liveness_and_readiness(service: ServiceProcess) -> None:
    live = httpx2.get(f"{service.base_url}/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "alive"}
    ready = httpx2.get(f"{service.base_url}/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "healthy"
    assert isinstance(body["checks"], list)
    assert ready.headers["cache-control"] == "no-store"


def test_metrics_exposition(service: ServiceProcess) -> None:
    labels = {"route": "/health/live", "method": "GET", "status": "200"}
    before = sample(service.base_url, "mcp_service_http_requests_total", **labels)
    httpx2.get(f"{service.base_url}/health/live")
    httpx2.get(f"{service.base_url}/health/live")
    assert sample(service.base_url, "mcp_service_http_requests_total", **labels) == before + 2
    response = httpx2.get(f"{service.base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'mcp_service_build_info{mcp_sdk_version="' in text


def test_foreign_host_gets_421(service: ServiceProcess) -> None:
    response = httpx2.post(
        service.mcp_url,
        headers=legacy_headers(host="evil.example"),
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert response.status_code == 421
    assert_structured_refusal(response, "Invalid Host header")


def assert_structured_refusal(response: httpx2.Response, message: str) -> None:
    """The SDK's plain-text (or empty) refusals reach the client as JSON-RPC errors."""
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["jsonrpc"], body["id"], body["error"]["code"]) == ("2.0", None, -32600)
    assert body["error"]["message"].startswith(message)
    assert int(response.headers["content-length"]) == len(response.content)


def test_refusals_before_json_rpc_are_structured(service: ServiceProcess) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers in (legacy_headers(), modern_headers("tools/list")):
        not_acceptable = httpx2.post(service.mcp_url, headers={**headers, "accept": "text/html"}, json=call)
        assert not_acceptable.status_code == 406
        assert_structured_refusal(not_acceptable, "Not Acceptable")
    wrong_type = httpx2.post(
        service.mcp_url, headers={**legacy_headers(), "content-type": "text/plain"}, content=json.dumps(call)
    )
    assert wrong_type.status_code == 400
    assert_structured_refusal(wrong_type, "Invalid Content-Type header")
    # JSON refusals are left as they are: a JSON-RPC parse error, the auth layer's OAuth body.
    parse_error = httpx2.post(service.mcp_url, headers=legacy_headers(), content=b"{")
    assert parse_error.json()["error"]["code"] == -32700


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost.evil.example", "null"])
def test_foreign_origin_gets_403(service: ServiceProcess, origin: str) -> None:
    response = httpx2.post(
        service.mcp_url,
        headers=legacy_headers(origin=origin),
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert response.status_code == 403
    assert_structured_refusal(response, "Invalid Origin header")


@pytest.mark.parametrize("origin", ["https://app.example.com", "http://localhost:3000", "http://127.0.0.1:6274"])
def test_allowed_origins_pass(service: ServiceProcess, origin: str) -> None:
    response = httpx2.post(
        service.mcp_url,
        headers=legacy_headers(origin=origin),
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert response.status_code == 200
    assert "tools" in final(response)["result"]


def test_modern_era_is_checked_too(service: ServiceProcess) -> None:
    response = httpx2.post(
        service.mcp_url,
        headers=modern_headers("tools/list", origin="http://evil.example"),
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": modern_meta()}},
    )
    assert response.status_code == 403


def test_trailing_slash_is_served_not_redirected(service: ServiceProcess) -> None:
    response = httpx2.post(
        f"{service.mcp_url}/",
        headers=legacy_headers(),
        json={"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
    )
    assert response.status_code == 200
    assert final(response)["id"] == 7


def test_malformed_json_is_a_parse_error(service: ServiceProcess) -> None:
    response = httpx2.post(service.mcp_url, headers=legacy_headers(), content=b'{"jsonrpc": "2.0", "id": 1,')
    assert response.status_code == 400
    assert final(response)["error"]["code"] == -32700


def test_unknown_method_is_method_not_found(service: ServiceProcess) -> None:
    response = httpx2.post(
        service.mcp_url, headers=legacy_headers(), json={"jsonrpc": "2.0", "id": 3, "method": "tools/explode"}
    )
    error = final(response)["error"]
    assert error["code"] == -32601


def test_wrong_content_type_is_rejected(service: ServiceProcess) -> None:
    response = httpx2.post(
        service.mcp_url,
        headers={**legacy_headers(), "content-type": "text/plain"},
        content=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
    )
    assert response.status_code in (400, 415)


def test_oversized_body_gets_413(service_factory: ServiceFactory) -> None:
    service = service_factory({"MCPS_MAX_REQUEST_BODY_BYTES": "2048"})
    payload = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {"pad": "x" * 4096}}}
    response = httpx2.post(service.mcp_url, headers=legacy_headers(), json=payload)
    assert response.status_code == 413


def test_request_id_is_echoed_and_logged(service: ServiceProcess) -> None:
    response = httpx2.post(
        service.mcp_url,
        headers=legacy_headers(**{"x-request-id": "trace-me-123"}),
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert response.headers["x-request-id"] == "trace-me-123"
    minted = httpx2.get(f"{service.base_url}/health/live").headers["x-request-id"]
    assert len(minted) == 16
    bogus = httpx2.post(
        service.mcp_url,
        headers=legacy_headers(**{"x-request-id": "bad id\twith spaces"}),
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert bogus.headers["x-request-id"] != "bad id\twith spaces"
    records = service.log_records()
    access = [r for r in records if r.get("logger") in ("mcp_service.access", "mcp_service.mcp")]
    # One line for the request: the MCP message's line carries the HTTP fields too.
    [line] = [r for r in access if r.get("request_id") == "trace-me-123"]
    assert line["logger"] == "mcp_service.mcp"
    assert (line["mcp_method"], line["outcome"], line["status"], line["path"]) == ("tools/list", "ok", 200, "/mcp")
    assert line["http_method"] == "POST"
    assert line["http_duration_ms"] >= line["duration_ms"] >= 0
    # A request that carried no MCP message gets the HTTP line alone.
    httpx2.post(service.mcp_url, headers={**legacy_headers(), "x-request-id": "refused-1"}, content=b"{")
    [refused] = [r for r in service.log_records() if r.get("request_id") == "refused-1"]
    assert (refused["logger"], refused["status"], refused["path"]) == ("mcp_service.access", 400, "/mcp")
    # Probes are not in the access log by default.
    assert not any(r.get("path", "").startswith("/health") for r in access)


def test_logs_are_json_lines(service: ServiceProcess) -> None:
    httpx2.post(service.mcp_url, headers=legacy_headers(), json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    records = service.log_records()
    assert records, "no log lines captured"
    unparsed = [r for r in records if "unparsed" in r]
    assert unparsed == []
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
