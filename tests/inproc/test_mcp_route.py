"""The direct path to /mcp (app/http/mcp_route.py) answers as the SDK's own app does, and is used."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from app.http.mcp_route import RawHeaderBearerBackend, direct_mcp_app
from app.settings import Settings
from tests.inproc import harness
from tests.inproc.harness import ALICE, BASE_URL, BOB, Era, InProcessService
from tests.support.rpc import legacy_headers, modern_headers, modern_meta

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]


@pytest.fixture
def settings() -> Settings:
    return harness.settings()


def sdk_app(service: InProcessService) -> Starlette:
    """The SDK's Starlette app, as the service mounts it (the plain path's last hop)."""
    mount = next(route for route in service.app.routes if isinstance(route, Mount) and route.path == "")
    assert isinstance(mount.app, Starlette)
    return mount.app


def request(era: Era, authorization: str | None) -> tuple[dict[str, str], dict[str, Any]]:
    headers = modern_headers("tools/call", "cheap") if era == "modern" else legacy_headers()
    if authorization is not None:
        headers["authorization"] = authorization
    params: dict[str, Any] = {"name": "cheap", "arguments": {}}
    if era == "modern":
        params["_meta"] = modern_meta()
    return headers, {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


@pytest.mark.parametrize("authorization", [None, "Bearer mcps_not-a-key", "Basic Zm9vOmJhcg=="])
async def test_refusals_of_the_auth_layer_are_the_sdks_own(
    service: InProcessService, era: Era, authorization: str | None
) -> None:
    plain = sdk_app(service)
    direct = direct_mcp_app(plain, "/mcp")
    assert direct is not None
    answers = []
    for app in (plain, direct):
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE_URL) as http:
            headers, body = request(era, authorization)
            response = await http.post("/mcp", headers=headers, json=body)
            answers.append((response.status_code, response.headers.get("www-authenticate"), response.content))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401
    assert answers[0][1] is not None
    assert answers[0][1].startswith("Bearer")


async def test_the_service_serves_mcp_through_the_direct_path(service: InProcessService, era: Era) -> None:
    assert direct_mcp_app(sdk_app(service), "/mcp") is not None
    assert (await service.call("cheap", era=era))["isError"] is False
    refused = await service.rpc("tools/call", {"name": "cheap", "arguments": {}}, token=None, era=era)
    assert refused.status_code == 401


def test_no_direct_path_when_the_sdk_app_holds_more_than_middleware_and_one_route() -> None:
    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("ok")(scope, receive, send)

    simple = Starlette(routes=[Route("/mcp", endpoint=endpoint)])
    assert isinstance(direct_mcp_app(simple, "/mcp"), ServerErrorMiddleware)
    assert direct_mcp_app(simple, "/other") is None
    handlers = Starlette(routes=[Route("/mcp", endpoint=endpoint)], exception_handlers={404: lambda r, e: None})
    assert direct_mcp_app(handlers, "/mcp") is None
    limited = Starlette(routes=[Route("/mcp", endpoint=endpoint)], max_body_size=10)
    assert direct_mcp_app(limited, "/mcp") is None


@pytest.mark.parametrize(
    ("authorization", "accepted"),
    [
        ([], False),
        ([f"Bearer {ALICE}"], True),
        ([f"bearer {BOB}"], True),
        ([f"BEARER {ALICE}"], True),
        ([f"Bearer  {ALICE}"], False),
        ([f"Basic {ALICE}"], False),
        (["Bearer mcps_not-a-key"], False),
        (["Bearer "], False),
        (["Bearer"], False),
        ([f"Bearer {ALICE}", f"Bearer {BOB}"], True),
        (["Bearer mcps_not-a-key", f"Bearer {ALICE}"], False),
    ],
)
async def test_the_raw_header_backend_gives_the_sdk_backends_verdicts(
    service: InProcessService, authorization: list[str], accepted: bool
) -> None:
    sdk_backend = next(
        kwargs["backend"] for cls, _, kwargs in sdk_app(service).user_middleware if cls is AuthenticationMiddleware
    )
    assert type(sdk_backend) is BearerAuthBackend
    headers = [(b"host", b"127.0.0.1"), (b"x-other", b"1")]
    headers += [(b"authorization", value.encode("latin-1")) for value in authorization]
    conn = HTTPConnection({"type": "http", "headers": headers})
    verdicts = []
    for backend in (sdk_backend, RawHeaderBearerBackend(sdk_backend)):
        verdict = await backend.authenticate(conn)
        verdicts.append(None if verdict is None else (verdict[0].scopes, verdict[1].access_token))
    assert verdicts[0] == verdicts[1]
    assert (verdicts[1] is not None) is accepted
