"""M4: a JWKS endpoint that answers slowly or without end holds no JWT request past the fetch's
timeout; a failed refresh keeps the last good keys."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx2
import pytest

from tests.conftest import ServiceFactory
from tests.support.jwks_server import JwksServer, SigningKey, claims, running_idp
from tests.support.rpc import legacy_headers
from tests.support.service import ServiceProcess

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


@pytest.fixture
def idp() -> Iterator[JwksServer]:
    with running_idp() as server:
        yield server


def start(service_factory: ServiceFactory, idp: JwksServer, timeout_seconds: str) -> ServiceProcess:
    return service_factory(
        {
            "MCPS_AUTH_DISABLED": "false",
            "MCPS_PACKS": "conformance",
            "MCPS_PUBLIC_URL": "http://127.0.0.1:{port}/mcp",
            "MCPS_JWT_ISSUER": idp.issuer,
            "MCPS_JWT_JWKS_URL": idp.url,
            "MCPS_JWKS_MIN_REFRESH_SECONDS": "1",
            "MCPS_JWKS_TIMEOUT_SECONDS": timeout_seconds,
        }
    )


def post(service: ServiceProcess, token: str) -> httpx2.Response:
    # The client waits far longer than the fetch may take, and far less than the endpoint misbehaves.
    headers = {**legacy_headers(), "authorization": f"Bearer {token}"}
    return httpx2.post(service.mcp_url, headers=headers, json=LIST, timeout=20)


def unknown_kid_token(service: ServiceProcess, idp: JwksServer) -> str:
    """A token naming a kid the cache lacks: verifying it refreshes the keys while the caller waits."""
    time.sleep(1.5)  # past the refresh floor (1 s) since the last fetch
    return SigningKey("k-rotated").sign(claims(idp.issuer, service.mcp_url))


def test_a_dripping_jwks_endpoint_holds_a_request_no_longer_than_the_fetch_timeout(
    service_factory: ServiceFactory, idp: JwksServer
) -> None:
    service = start(service_factory, idp, timeout_seconds="1")
    known = idp.keys[0].sign(claims(idp.issuer, service.mcp_url))
    assert post(service, known).status_code == 200  # keys cached
    idp.mode = "drip"  # one byte every 0.2 s: no single read ever times out
    assert post(service, unknown_kid_token(service, idp)).status_code == 401
    assert post(service, known).status_code == 200  # the last good keys are kept


def test_an_oversized_jwks_document_is_refused_before_it_is_all_read(
    service_factory: ServiceFactory, idp: JwksServer
) -> None:
    # The fetch's deadline (30 s) is past the client's patience: only the size cap can answer in time.
    service = start(service_factory, idp, timeout_seconds="30")
    known = idp.keys[0].sign(claims(idp.issuer, service.mcp_url))
    assert post(service, known).status_code == 200
    idp.mode = "huge"
    assert post(service, unknown_kid_token(service, idp)).status_code == 401
    assert post(service, known).status_code == 200
