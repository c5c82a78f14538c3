"""Redirects never carry the upstream's credentials outside the configured API (issue 19, Info)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import stamina

from app.errors import ErrorCode, ServiceError
from app.upstream import CircuitBreaker, UpstreamClient
from tests.support.fake_http import FakeHTTPServer, Reply

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": TOKEN}


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


@pytest.fixture
def api() -> Iterator[FakeHTTPServer]:
    with FakeHTTPServer() as server:
        yield server


@pytest.fixture
def elsewhere() -> Iterator[FakeHTTPServer]:
    with FakeHTTPServer() as server:
        yield server


@pytest.fixture
async def client(api: FakeHTTPServer) -> AsyncIterator[UpstreamClient]:
    breaker = CircuitBreaker("api", failure_threshold=3, window_seconds=30, open_seconds=15, half_open_successes=2)
    async with UpstreamClient("api", api.url("/api/v1"), headers=HEADERS, breaker=breaker) as c:
        yield c


def _moved(location: str) -> Reply:
    return Reply(301, b"", {"location": location})


def _token_seen(server: FakeHTTPServer, path: str) -> bool:
    return any(TOKEN in value for request in server.requests_to(path) for value in request.headers.values())


async def test_a_redirect_inside_the_api_is_followed_with_credentials(
    api: FakeHTTPServer, client: UpstreamClient
) -> None:
    api.route("/api/v1/repos/old", _moved("/api/v1/repos/new"))
    api.route("/api/v1/repos/new", Reply.json({"name": "new"}))
    response = await client.request("GET", "repos/old")
    assert response.json() == {"name": "new"}
    assert _token_seen(api, "/api/v1/repos/new")


@pytest.mark.parametrize("target", ["/login", "/api/v10/x", "/api/v1/../../login"])
async def test_a_redirect_to_the_same_host_outside_the_api_is_refused(
    api: FakeHTTPServer, client: UpstreamClient, target: str
) -> None:
    api.route("/api/v1/repos/old", _moved(target))
    api.route("/login", Reply.text("login page"))
    api.route("/api/v10/x", Reply.text("another API"))
    with pytest.raises(ServiceError) as caught:
        await client.request("GET", "repos/old")
    assert caught.value.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert TOKEN not in str(caught.value)
    assert [r.path for r in api.requests] == ["/api/v1/repos/old"]


async def test_a_redirect_to_another_host_is_refused(
    api: FakeHTTPServer, elsewhere: FakeHTTPServer, client: UpstreamClient
) -> None:
    api.route("/api/v1/repos/old", _moved(elsewhere.url("/api/v1/repos/new")))
    elsewhere.route("/api/v1/repos/new", Reply.json({"stolen": True}))
    with pytest.raises(ServiceError) as caught:
        await client.request("GET", "repos/old")
    assert caught.value.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert elsewhere.requests == []
    assert not _token_seen(elsewhere, "/api/v1/repos/new")
