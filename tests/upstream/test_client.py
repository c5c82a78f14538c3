"""`UpstreamClient` against a real HTTP server on loopback: retries, deadlines, breaker, ETags, errors.

Backoff is switched off with ``stamina.set_testing`` (attempts capped at the client's own), so
retry tests count requests, not seconds. Timing bounds are deliberately loose (noisy CI machines).
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from email.utils import formatdate
from typing import Any

import anyio
import pytest
import stamina

from app.errors import ErrorCode, ServiceError
from app.upstream import BreakerState, CircuitBreaker, EtagCache, UpstreamClient
from tests.support.fake_http import FakeHTTPServer, Reply, unused_port

pytestmark = pytest.mark.anyio

NAME = "fakeapi"


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """The state, read through a call (mypy would otherwise narrow the property across asserts)."""
    return breaker.state


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Attempts:
    """An observer that keeps what it is told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int | str, float, int]] = []

    def __call__(self, upstream: str, method: str, outcome: int | str, duration: float, attempt: int) -> None:
        self.seen.append((upstream, method, outcome, duration, attempt))

    @property
    def outcomes(self) -> list[int | str]:
        return [s[2] for s in self.seen]


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


@pytest.fixture
def fake() -> Iterator[FakeHTTPServer]:
    with FakeHTTPServer() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(
        NAME, failure_threshold=3, window_seconds=30, open_seconds=15, half_open_successes=2, clock=clock
    )


@pytest.fixture
async def client(fake: FakeHTTPServer, breaker: CircuitBreaker) -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient(NAME, fake.base_url, breaker=breaker, read_timeout=2.0, total_timeout=5.0) as c:
        yield c


async def expect_error(client: UpstreamClient, method: str, path: str, **kw: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        await client.request(method, path, **kw)
    return caught.value


# --- plain calls ------------------------------------------------------------------------------


async def test_get_returns_the_answer(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/v1/forecast", Reply.json({"temperature": 21.5}, headers={"x-extra": "1"}))
    response = await client.request("GET", "/v1/forecast", params={"latitude": 52.5})
    assert response.status == 200
    assert response.json() == {"temperature": 21.5}
    assert response.headers["x-extra"] == "1"
    assert response.text == '{"temperature": 21.5}'
    assert not response.from_cache
    assert not response.not_modified
    assert response.attempts == 1
    sent = fake.requests_to("/v1/forecast")[0]
    assert sent.param("latitude") == "52.5"
    assert sent.headers["user-agent"].startswith("mcp-service/")


async def test_post_sends_json(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/issues", lambda req: Reply.json({"echo": req.json()}, 201), method="POST")
    response = await client.request("POST", "/issues", json={"title": "bug"})
    assert response.status == 201
    assert response.json() == {"echo": {"title": "bug"}}


async def test_a_body_that_is_not_json_is_an_upstream_failure(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/html", Reply.text("<html>oops</html>"))
    response = await client.request("GET", "/html")
    with pytest.raises(ServiceError) as caught:
        response.json()
    assert caught.value.error_code is ErrorCode.UPSTREAM_UNAVAILABLE


async def test_absolute_urls_are_refused(client: UpstreamClient) -> None:
    for bad in ("https://evil.example/steal", "//evil.example/steal"):
        with pytest.raises(ValueError, match="relative"):
            await client.request("GET", bad)


async def test_upstream_cookies_are_not_replayed(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/login", Reply.json({}, headers={"set-cookie": "session=alice; Path=/"}))
    await client.request("GET", "/login")
    await client.request("GET", "/login")
    assert "cookie" not in fake.requests_to("/login")[1].headers


async def test_oversized_responses_are_refused(fake: FakeHTTPServer, breaker: CircuitBreaker) -> None:
    fake.route("/big", Reply.text("x" * 5000))
    async with UpstreamClient(NAME, fake.base_url, breaker=breaker, max_response_bytes=1000) as client:
        error = await expect_error(client, "GET", "/big")
    assert error.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert error.details["error"] == "response_too_large"


# --- retries ----------------------------------------------------------------------------------


async def test_503_is_retried_until_it_succeeds(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.fail_then("/flaky", failures=2, success=Reply.json({"ok": True}))
    response = await client.request("GET", "/flaky")
    assert response.json() == {"ok": True}
    assert response.attempts == 3
    assert fake.count("/flaky") == 3


async def test_retries_stop_at_max_attempts(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/down", Reply.json({"message": "Service Unavailable"}, 503))
    error = await expect_error(client, "GET", "/down")
    assert error.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert error.retryable
    assert error.details == {"upstream": NAME, "status": 503}
    assert fake.count("/down") == 3


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, ErrorCode.VALIDATION_ERROR), (404, ErrorCode.NOT_FOUND), (422, ErrorCode.VALIDATION_ERROR)],
)
async def test_4xx_is_never_retried(fake: FakeHTTPServer, client: UpstreamClient, status: int, code: ErrorCode) -> None:
    fake.route("/bad", Reply.json({"message": "Nope"}, status))
    error = await expect_error(client, "GET", "/bad")
    assert error.error_code is code
    assert fake.count("/bad") == 1


async def test_500_is_not_retried(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/boom", Reply.json({}, 500))
    error = await expect_error(client, "GET", "/boom")
    assert error.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert fake.count("/boom") == 1


async def test_post_is_not_retried_unless_declared_idempotent(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.fail_then("/issues", failures=1, success=Reply.json({"id": 1}, 201))
    error = await expect_error(client, "POST", "/issues", json={"title": "x"})
    assert error.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert fake.count("/issues") == 1

    fake.fail_then("/search", failures=1, success=Reply.json({"hits": []}))
    response = await client.request("POST", "/search", json={"q": "x"}, idempotent=True)
    assert response.status == 200
    assert fake.count("/search") == 2


async def test_get_declared_not_idempotent_is_not_retried(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.fail_then("/once", failures=1, success=Reply.json({}))
    await expect_error(client, "GET", "/once", idempotent=False)
    assert fake.count("/once") == 1


async def test_read_timeout_is_retried(fake: FakeHTTPServer, breaker: CircuitBreaker) -> None:
    fake.route("/slow-once", Reply.json({"late": True}, delay=3.0), Reply.json({"late": False}))
    observer = Attempts()
    async with UpstreamClient(
        NAME, fake.base_url, breaker=breaker, read_timeout=0.3, total_timeout=10, observer=observer
    ) as client:
        response = await client.request("GET", "/slow-once")
    assert response.json() == {"late": False}
    assert observer.outcomes == ["timeout", 200]


async def test_dropped_connection_is_retried(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/drop", Reply.drop(), Reply.json({"ok": True}))
    response = await client.request("GET", "/drop")
    assert response.json() == {"ok": True}
    assert fake.count("/drop") == 2


async def test_connection_refused_is_retried_then_unavailable(breaker: CircuitBreaker) -> None:
    observer = Attempts()
    async with UpstreamClient(NAME, f"http://127.0.0.1:{unused_port()}", breaker=breaker, observer=observer) as client:
        error = await expect_error(client, "GET", "/anything")
    assert error.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert error.retryable
    assert error.details == {"upstream": NAME, "error": "connect_error"}
    assert observer.outcomes == ["connect_error"] * 3


async def test_observer_sees_every_attempt(fake: FakeHTTPServer, breaker: CircuitBreaker) -> None:
    fake.fail_then("/obs", failures=1, success=Reply.json({}))
    observer = Attempts()
    async with UpstreamClient(NAME, fake.base_url, breaker=breaker, observer=observer) as client:
        await client.request("get", "/obs")
    assert [(s[0], s[1], s[2], s[4]) for s in observer.seen] == [(NAME, "GET", 503, 1), (NAME, "GET", 200, 2)]
    assert all(0 <= s[3] < 5 for s in observer.seen)


async def test_a_broken_observer_does_not_break_calls(fake: FakeHTTPServer, breaker: CircuitBreaker) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("metrics down")

    fake.route("/x", Reply.json({}))
    async with UpstreamClient(NAME, fake.base_url, breaker=breaker, observer=broken) as client:
        assert (await client.request("GET", "/x")).status == 200


async def test_the_retry_hook_names_every_backoff(fake: FakeHTTPServer, breaker: CircuitBreaker) -> None:
    """stamina sleeps what the hook says (full jitter under the client's ceiling), never its own default."""
    scheduled: list[float] = []
    previous = stamina.instrumentation.get_on_retry_hooks()
    stamina.instrumentation.set_on_retry_hooks([lambda details: scheduled.append(details.wait_for)])
    fake.fail_then("/flaky", failures=2, success=Reply.json({"ok": True}))
    try:
        with stamina.set_testing(False):
            async with UpstreamClient(
                NAME, fake.base_url, breaker=breaker, backoff_initial=0.001, backoff_max=0.002
            ) as client:
                assert (await client.request("GET", "/flaky")).json() == {"ok": True}
    finally:
        stamina.instrumentation.set_on_retry_hooks(previous)
    assert len(scheduled) == 2
    # stamina's own backoff starts at its default wait_initial (0.1 s): only the hook's fits under this.
    assert all(0 <= wait <= 0.002 for wait in scheduled), scheduled


# --- deadlines --------------------------------------------------------------------------------


async def test_total_timeout_bounds_a_slow_upstream(fake: FakeHTTPServer, breaker: CircuitBreaker) -> None:
    fake.route("/slow", Reply.json({}, delay=5.0))
    async with UpstreamClient(NAME, fake.base_url, breaker=breaker, read_timeout=10, total_timeout=0.5) as client:
        started = time.monotonic()
        error = await expect_error(client, "GET", "/slow")
        elapsed = time.monotonic() - started
    assert error.error_code is ErrorCode.TIMEOUT
    assert error.retryable
    assert error.details == {"upstream": NAME}
    assert elapsed < 5


async def test_total_timeout_bounds_retries_too(fake: FakeHTTPServer, breaker: CircuitBreaker) -> None:
    fake.route("/slow", Reply.json({}, delay=5.0))
    observer = Attempts()
    async with UpstreamClient(
        NAME, fake.base_url, breaker=breaker, read_timeout=0.3, total_timeout=0.8, max_attempts=10, observer=observer
    ) as client:
        started = time.monotonic()
        error = await expect_error(client, "GET", "/slow")
        elapsed = time.monotonic() - started
    assert error.error_code is ErrorCode.TIMEOUT
    assert elapsed < 5
    assert 2 <= fake.count("/slow") <= 4  # retried, but only as often as the deadline allowed
    assert set(observer.outcomes) == {"timeout"}


# --- circuit breaker --------------------------------------------------------------------------


async def test_breaker_opens_fails_fast_and_recovers(
    fake: FakeHTTPServer, client: UpstreamClient, breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fake.route("/api", Reply.json({}, 500))
    for _ in range(3):
        assert (await expect_error(client, "GET", "/api")).error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert state_of(breaker) == "open"

    fast = await expect_error(client, "GET", "/api")
    assert fast.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert fast.retryable
    assert fast.details == {"upstream": NAME, "breaker": "open"}
    assert fast.retry_after_ms == 15_000
    assert fake.count("/api") == 3  # no request reached the upstream

    fake.route("/api", Reply.json({"ok": True}))  # the upstream recovers
    clock.advance(10)
    assert (await expect_error(client, "GET", "/api")).retry_after_ms == 5_000
    clock.advance(5)
    assert (await client.request("GET", "/api")).json() == {"ok": True}
    assert state_of(breaker) == "half_open"
    await client.request("GET", "/api")
    assert state_of(breaker) == "closed"
    assert fake.count("/api") == 5


async def test_retries_count_against_the_breaker(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/down", Reply.json({}, 503))
    await expect_error(client, "GET", "/down")  # three attempts, three failures
    assert state_of(client.breaker) == "open"
    await expect_error(client, "GET", "/down")
    assert fake.count("/down") == 3


async def test_4xx_and_429_do_not_trip_the_breaker(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/missing", Reply.json({"message": "Not Found"}, 404))
    fake.route("/limited", Reply.json({}, 429, headers={"retry-after": "60"}))
    for _ in range(5):
        await expect_error(client, "GET", "/missing")
        await expect_error(client, "GET", "/limited")
    assert state_of(client.breaker) == "closed"
    assert client.breaker.snapshot()["failures_in_window"] == 0


async def test_half_open_lets_one_probe_through(
    fake: FakeHTTPServer, client: UpstreamClient, breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fake.route("/api", Reply.json({}, 500))
    for _ in range(3):
        await expect_error(client, "GET", "/api")
    fake.route("/api", Reply.json({"ok": True}, delay=0.5))
    clock.advance(15)
    outcomes: list[object] = []

    async def call() -> None:
        try:
            outcomes.append((await client.request("GET", "/api")).status)
        except ServiceError as exc:
            outcomes.append(exc.details.get("breaker"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        with anyio.fail_after(5):
            while fake.count("/api") < 4:  # the first call is at the upstream: it holds the probe slot
                await anyio.sleep(0.01)
        tg.start_soon(call)
    assert sorted(outcomes, key=str) == [200, "half_open"]
    assert fake.count("/api") == 4


async def test_timeouts_count_against_the_breaker(fake: FakeHTTPServer, breaker: CircuitBreaker) -> None:
    fake.route("/slow", Reply.json({}, delay=5.0))
    async with UpstreamClient(
        NAME, fake.base_url, breaker=breaker, read_timeout=10, total_timeout=0.3, max_attempts=1
    ) as client:
        for _ in range(3):
            assert (await expect_error(client, "GET", "/slow")).error_code is ErrorCode.TIMEOUT
    assert state_of(breaker) == "open"


async def test_upstream_going_away_and_coming_back(
    fake: FakeHTTPServer, client: UpstreamClient, breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fake.route("/api", Reply.json({"ok": True}))
    await client.request("GET", "/api")  # leaves a pooled keep-alive connection behind
    fake.stop()
    error = await expect_error(client, "GET", "/api")
    assert error.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert state_of(breaker) == "open"
    fake.start()
    clock.advance(15)
    await client.request("GET", "/api")
    await client.request("GET", "/api")
    assert state_of(breaker) == "closed"


# --- rate limits and error mapping ------------------------------------------------------------


async def test_429_with_a_short_retry_after_is_retried(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/rl", Reply.json({}, 429, headers={"retry-after": "0"}), Reply.json({"ok": True}))
    assert (await client.request("GET", "/rl")).json() == {"ok": True}
    assert fake.count("/rl") == 2


async def test_429_with_a_long_retry_after_is_rate_limited(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/rl", Reply.json({"message": "slow down"}, 429, headers={"retry-after": "120"}))
    error = await expect_error(client, "GET", "/rl")
    assert error.error_code is ErrorCode.RATE_LIMITED
    assert error.retryable
    assert error.retry_after_ms == 120_000
    assert fake.count("/rl") == 1


async def test_429_with_an_http_date(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    when = formatdate(time.time() + 90, usegmt=True)
    fake.route("/rl", Reply.json({}, 429, headers={"retry-after": when}))
    error = await expect_error(client, "GET", "/rl")
    assert error.error_code is ErrorCode.RATE_LIMITED
    assert error.retry_after_ms is not None
    assert 80_000 <= error.retry_after_ms <= 91_000


async def test_github_style_403_rate_limit(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    reset = int(time.time()) + 60
    fake.route(
        "/repos/{owner}/{repo}",
        Reply.json(
            {"message": "API rate limit exceeded for installation."},
            403,
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset), "x-ratelimit-limit": "5000"},
        ),
    )
    error = await expect_error(client, "GET", "/repos/octo/hello")
    assert error.error_code is ErrorCode.RATE_LIMITED
    assert error.retry_after_ms is not None
    assert 50_000 <= error.retry_after_ms <= 61_000
    assert fake.requests_to("/repos/{owner}/{repo}")[0].path_params == {"owner": "octo", "repo": "hello"}


async def test_503_with_a_long_retry_after_is_not_retried(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/maint", Reply.json({}, 503, headers={"retry-after": "300"}))
    error = await expect_error(client, "GET", "/maint")
    assert error.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert error.retry_after_ms == 300_000
    assert fake.count("/maint") == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials(fake: FakeHTTPServer, client: UpstreamClient, status: int) -> None:
    fake.route("/private", Reply.json({"message": "Bad credentials"}, status))
    error = await expect_error(client, "GET", "/private")
    assert error.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert not error.retryable
    assert "credentials" in error.text
    assert fake.count("/private") == 1


async def test_404_is_not_found(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/repos/{owner}/{repo}", Reply.json({"message": "Not Found"}, 404))
    error = await expect_error(client, "GET", "/repos/octo/nope")
    assert error.error_code is ErrorCode.NOT_FOUND
    assert error.details == {"upstream": NAME, "status": 404}


async def test_other_4xx_carries_the_upstreams_short_message(fake: FakeHTTPServer, client: UpstreamClient) -> None:
    fake.route("/v1/forecast", Reply.json({"error": True, "reason": "Latitude must be in range of -90 to 90°."}, 400))
    error = await expect_error(client, "GET", "/v1/forecast", params={"latitude": 500})
    assert error.error_code is ErrorCode.VALIDATION_ERROR
    assert not error.retryable
    assert error.text == f"{NAME} rejected the request (HTTP 400): Latitude must be in range of -90 to 90°."

    fake.route("/long", Reply.json({"message": "y" * 1000}, 422))
    long_error = await expect_error(client, "GET", "/long")
    assert len(long_error.text) < 260


async def test_no_secret_in_any_error(fake: FakeHTTPServer, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.route("/400", Reply.json({"message": "bad header Authorization: Bearer sekret (sekret)"}, 400))
    fake.route("/401", Reply.json({"message": "Bad credentials: sekret"}, 401))
    fake.route("/403", Reply.json({"message": "sekret"}, 403))
    fake.route("/404", Reply.json({"message": "sekret"}, 404))
    fake.route("/429", Reply.json({"message": "sekret"}, 429, headers={"retry-after": "100"}))
    fake.route("/503", Reply.json({"message": "sekret"}, 503))
    fake.route("/slow", Reply.json({}, delay=5))
    fake.route("/drop", Reply.drop())
    auth = {"Authorization": "Bearer sekret"}
    collected: list[ServiceError] = []
    patient = CircuitBreaker(NAME, failure_threshold=100, clock=clock)
    async with UpstreamClient(
        NAME, fake.base_url, headers=auth, breaker=patient, read_timeout=0.2, total_timeout=1
    ) as client:
        for path in ("/400", "/401", "/403", "/404", "/429", "/503", "/slow", "/drop"):
            collected.append(await expect_error(client, "GET", path))
    touchy = CircuitBreaker(NAME, failure_threshold=1, clock=clock)
    async with UpstreamClient(NAME, fake.base_url, headers=auth, breaker=touchy, max_attempts=1) as client:
        await expect_error(client, "GET", "/503")
        collected.append(await expect_error(client, "GET", "/503"))  # the breaker's fail-fast error
    async with UpstreamClient(NAME, f"http://127.0.0.1:{unused_port()}", headers=auth, breaker=patient) as dead:
        collected.append(await expect_error(dead, "GET", "/x"))

    assert {e.error_code for e in collected} == {
        ErrorCode.VALIDATION_ERROR,
        ErrorCode.UPSTREAM_UNAVAILABLE,
        ErrorCode.NOT_FOUND,
        ErrorCode.RATE_LIMITED,
        ErrorCode.TIMEOUT,
    }
    assert any(e.details.get("breaker") == "open" for e in collected)
    for error in collected:
        rendered = [
            str(error),
            repr(error),
            error.summary(),
            json.dumps(error.to_dict()),
            "".join(traceback.format_exception(error)),
        ]
        assert not any("sekret" in text for text in rendered), rendered
    assert fake.requests_to("/400")[0].headers["authorization"] == "Bearer sekret"  # it was really sent
    for record in caplog.records:
        assert "sekret" not in record.getMessage()
        assert "sekret" not in json.dumps(record.__dict__, default=str)


# --- conditional requests ---------------------------------------------------------------------


@pytest.fixture
async def cached_client(fake: FakeHTTPServer, breaker: CircuitBreaker) -> AsyncIterator[UpstreamClient]:
    async with UpstreamClient(NAME, fake.base_url, breaker=breaker, etag_cache=EtagCache()) as c:
        yield c


async def test_etag_round_trip(fake: FakeHTTPServer, cached_client: UpstreamClient) -> None:
    fake.route(
        "/repos/octo/hello",
        Reply.json({"stars": 42}, etag='W/"abc"', headers={"x-ratelimit-remaining": "4999"}),
    )
    first = await cached_client.request("GET", "/repos/octo/hello")
    assert first.json() == {"stars": 42}
    assert not first.not_modified

    fake.route(
        "/repos/octo/hello", Reply.json({"stars": 42}, etag='W/"abc"', headers={"x-ratelimit-remaining": "4998"})
    )
    second = await cached_client.request("GET", "/repos/octo/hello")
    sent = fake.requests_to("/repos/octo/hello")
    assert "if-none-match" not in sent[0].headers
    assert sent[1].headers["if-none-match"] == 'W/"abc"'
    assert second.status == 200
    assert second.not_modified
    assert second.from_cache
    assert second.json() == {"stars": 42}
    assert second.headers["x-ratelimit-remaining"] == "4998"  # refreshed from the 304
    assert second.headers["content-type"].startswith("application/json")
    assert state_of(cached_client.breaker) == "closed"


async def test_a_changed_resource_replaces_the_cached_one(fake: FakeHTTPServer, cached_client: UpstreamClient) -> None:
    fake.route("/doc", Reply.json({"v": 1}, etag='"v1"'), Reply.json({"v": 2}, etag='"v2"'))
    assert (await cached_client.request("GET", "/doc")).json() == {"v": 1}
    changed = await cached_client.request("GET", "/doc")
    assert changed.json() == {"v": 2}
    assert not changed.not_modified
    again = await cached_client.request("GET", "/doc")
    assert again.not_modified
    assert again.json() == {"v": 2}
    assert [r.headers.get("if-none-match") for r in fake.requests_to("/doc")] == [None, '"v1"', '"v2"']


async def test_vary_keys_keep_principals_apart(fake: FakeHTTPServer, cached_client: UpstreamClient) -> None:
    fake.route("/me", Reply.json({"login": "someone"}, etag='"e"'))
    await cached_client.request("GET", "/me", cache_vary="alice")
    await cached_client.request("GET", "/me", cache_vary="bob")
    await cached_client.request("GET", "/me", cache_vary="alice")
    assert [r.headers.get("if-none-match") for r in fake.requests_to("/me")] == [None, None, '"e"']


async def test_per_call_credentials_keep_entries_apart(fake: FakeHTTPServer, cached_client: UpstreamClient) -> None:
    fake.route("/me", Reply.json({"login": "someone"}, etag='"e"'))
    await cached_client.request("GET", "/me", headers={"Authorization": "token one"})
    await cached_client.request("GET", "/me", headers={"Authorization": "token two"})
    assert [r.headers.get("if-none-match") for r in fake.requests_to("/me")] == [None, None]


async def test_only_cacheable_answers_are_kept(fake: FakeHTTPServer, cached_client: UpstreamClient) -> None:
    fake.route("/no-etag", Reply.json({}))
    fake.route("/no-store", Reply.json({}, etag='"e"', headers={"cache-control": "no-store"}))
    fake.route("/post", Reply.json({}, etag='"e"'))
    for _ in range(2):
        await cached_client.request("GET", "/no-etag")
        await cached_client.request("GET", "/no-store")
        await cached_client.request("POST", "/post")
    assert all("if-none-match" not in r.headers for r in fake.requests)


async def test_callers_own_if_none_match_passes_through(fake: FakeHTTPServer, cached_client: UpstreamClient) -> None:
    fake.route("/own", Reply.json({"v": 1}, etag='"v1"'))
    response = await cached_client.request("GET", "/own", headers={"If-None-Match": '"v1"'})
    assert response.status == 304
    assert response.not_modified
    assert not response.from_cache
    assert response.content == b""
