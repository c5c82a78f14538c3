"""The scriptable fake upstream itself (it is reused to fake GitHub, Open-Meteo, ...)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from tests.support.fake_http import FakeHTTPServer, Recorded, Reply


@pytest.fixture
def fake() -> Iterator[FakeHTTPServer]:
    with FakeHTTPServer() as server:
        yield server


@pytest.fixture
def http(fake: FakeHTTPServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=fake.base_url, timeout=5) as client:
        yield client


def test_replies_play_in_order_then_the_last_repeats(fake: FakeHTTPServer, http: httpx2.Client) -> None:
    route = fake.fail_then("/x", failures=2, success=Reply.json({"ok": True}))
    assert [http.get("/x").status_code for _ in range(4)] == [503, 503, 200, 200]
    assert route.hits == 4
    assert fake.count("/x") == 4


def test_patterns_methods_and_unmatched(fake: FakeHTTPServer, http: httpx2.Client) -> None:
    fake.route("/repos/{owner}/{repo}", Reply.json({"kind": "repo"}))
    fake.route("/repos/{owner}/{repo}", Reply.json({"kind": "deleted"}, 204), method="DELETE")
    assert http.get("/repos/octo/hello").json() == {"kind": "repo"}
    assert http.delete("/repos/octo/hello").status_code == 204
    missing = http.get("/repos/octo")
    assert missing.status_code == 404
    assert "no fake route" in missing.json()["message"]
    assert fake.requests_to("/repos/{owner}/{repo}", method="DELETE")[0].path_params == {
        "owner": "octo",
        "repo": "hello",
    }


def test_requests_are_recorded(fake: FakeHTTPServer, http: httpx2.Client) -> None:
    fake.route("/echo", lambda req: Reply.json({"got": req.json(), "q": req.param("q")}), method="POST")
    response = http.post("/echo", params={"q": "a b"}, json={"k": 1}, headers={"X-Thing": "yes"})
    assert response.json() == {"got": {"k": 1}, "q": "a b"}
    (seen,) = fake.requests
    assert (seen.method, seen.path, seen.headers["x-thing"]) == ("POST", "/echo", "yes")


def test_a_broken_script_answers_500(fake: FakeHTTPServer, http: httpx2.Client) -> None:
    def broken(_: Recorded) -> Reply:
        raise KeyError("oops")

    fake.route("/broken", broken)
    assert http.get("/broken").status_code == 500


def test_etag_and_304(fake: FakeHTTPServer, http: httpx2.Client) -> None:
    fake.route("/doc", Reply.json({"v": 1}, etag='W/"v1"'))
    first = http.get("/doc")
    assert first.headers["etag"] == 'W/"v1"'
    assert http.get("/doc", headers={"If-None-Match": '"v1"'}).status_code == 304  # weak comparison
    assert http.get("/doc", headers={"If-None-Match": '"v0", W/"v1"'}).status_code == 304
    assert http.get("/doc", headers={"If-None-Match": '"v2"'}).status_code == 200


def test_reset_and_restart_on_the_same_port(fake: FakeHTTPServer, http: httpx2.Client) -> None:
    fake.route("/x", Reply.text("hi"))
    assert http.get("/x").text == "hi"
    port = fake.port
    fake.stop()
    with pytest.raises(httpx2.TransportError):
        http.get("/x")
    fake.start()
    assert fake.port == port
    assert http.get("/x").text == "hi"
    fake.reset()
    assert fake.requests == []
    assert http.get("/x").status_code == 404


def test_drop_and_delay(fake: FakeHTTPServer, http: httpx2.Client) -> None:
    fake.route("/drop", Reply.drop())
    fake.route("/late", Reply.text("late", delay=2))
    with pytest.raises(httpx2.RemoteProtocolError):
        http.get("/drop")
    with pytest.raises(httpx2.ReadTimeout):
        http.get("/late", timeout=0.2)


def test_recorded_request_helpers() -> None:
    recorded = Recorded("POST", "/x", {"a": ["1", "2"]}, {}, b'{"k": 1}')
    assert recorded.param("a") == "1"
    assert recorded.param("b") is None
    assert recorded.json() == {"k": 1}
