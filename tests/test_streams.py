"""Long-lived streams over loopback against the real service (issue 19 M1: a GET stream that never ends)."""

from __future__ import annotations

import httpx2

from tests.conftest import ServiceFactory
from tests.support.rpc import legacy_headers


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
