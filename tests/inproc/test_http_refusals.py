"""Refusals HTTP understands (SEP-3304 draft): 429, Retry-After and RateLimit-* outside a tool call,
the same headers on a refused tools/call (still a 200 ``isError`` answer), in both eras and framings;
listing and discovery never spend a token."""

from __future__ import annotations

import math
from typing import Any

import httpx2
import pytest
from starlette.types import Message

from app.call import CallContext
from app.http.refusals import SseStartHold
from tests.inproc import harness
from tests.inproc.harness import READER, Era
from tests.support.rpc import LEGACY_VERSION, final

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]

READ = ("resources/read", {"uri": "test://static-text"})
GET = ("prompts/get", {"name": "test_simple_prompt"})
FRAMINGS = {"sse": False, "json": True}


def config(json_response: bool, **overrides: Any) -> Any:
    # One token, and no refill worth speaking of while a test runs.
    return harness.settings(
        packs=("guard", "conformance"),
        rate_limit_capacity=1,
        rate_limit_refill_per_second=0.01,
        json_response=json_response,
        **overrides,
    )


def assert_rate_headers(response: httpx2.Response, remaining: int) -> None:
    assert response.headers["ratelimit-limit"] == "1"
    assert response.headers["ratelimit-remaining"] == str(remaining)


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize(("method", "params"), [READ, GET], ids=["resources-read", "prompts-get"])
async def test_a_refusal_outside_a_tool_call_is_http_429(
    framing: str, method: str, params: dict[str, Any], era: Era
) -> None:
    async with harness.running(config(FRAMINGS[framing])) as service:
        served = await service.rpc(method, params, token=READER, era=era)
        refused = await service.rpc(method, params, token=READER, era=era)
    assert served.status_code == 200
    assert "result" in final(served)
    assert "retry-after" not in served.headers
    assert_rate_headers(served, 0)

    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/json")  # never a 429 "stream"
    error = refused.json()["error"]
    assert error["code"] == -32000
    assert error["data"]["code"] == "RATE_LIMITED"
    assert error["data"]["retryAfterMs"] == error["data"]["retry_after_ms"] > 0
    assert refused.headers["retry-after"] == str(math.ceil(error["data"]["retryAfterMs"] / 1000))
    assert_rate_headers(refused, 0)


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_a_refused_tool_call_stays_a_200_result_with_the_headers(framing: str, era: Era) -> None:
    async with harness.running(config(FRAMINGS[framing])) as service:
        served = await service.rpc("tools/call", {"name": "cheap", "arguments": {}}, era=era)
        refused = await service.rpc("tools/call", {"name": "cheap", "arguments": {}}, era=era)
    assert final(served)["result"]["isError"] is False
    assert_rate_headers(served, 0)
    assert refused.status_code == 200
    result = final(refused)["result"]
    assert result["isError"] is True
    retry_ms = result["structuredContent"]["retry_after_ms"]  # the model reads it
    assert refused.headers["retry-after"] == str(math.ceil(retry_ms / 1000))
    assert_rate_headers(refused, 0)


async def test_a_stateful_sse_refusal_is_429_too() -> None:
    """Stateful mode sends a resumption cursor before the message: it is held back with the start."""
    async with harness.running(config(False, transport_mode="stateful")) as service:
        init = {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        opened = await service.rpc("initialize", init, token=READER)
        session = {"mcp-session-id": opened.headers["mcp-session-id"]}
        await service.rpc("resources/read", READ[1], token=READER, headers=session)
        refused = await service.rpc("resources/read", READ[1], token=READER, headers=session)
    assert refused.status_code == 429
    assert refused.headers["mcp-session-id"] == session["mcp-session-id"]
    assert refused.json()["error"]["data"]["code"] == "RATE_LIMITED"


LISTINGS = ["tools/list", "resources/list", "resources/templates/list", "prompts/list"]


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_listing_and_discovery_spend_no_tokens(framing: str, era: Era) -> None:
    init = {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    # 2026-07-28 has server/discover and no ping; the handshake era initialize and ping.
    first = [("server/discover", {})] if era == "modern" else [("initialize", init), ("ping", {})]
    async with harness.running(config(FRAMINGS[framing])) as service:
        for _ in range(3):
            for method, params in [*first, *((name, {}) for name in LISTINGS)]:
                response = await service.rpc(method, params, token=READER, era=era)
                assert response.status_code == 200, (method, response.text)
                assert "result" in final(response), (method, response.text)
                assert "ratelimit-limit" not in response.headers
        served = await service.rpc(*READ, token=READER, era=era)  # the one token is still there
    assert "result" in final(served)


async def test_a_refused_listen_is_429_before_any_stream() -> None:
    listen = {"notifications": {"toolsListChanged": True}}
    async with harness.running(config(False)) as service:
        await service.rpc(*READ, token=READER, era="modern")  # the one token
        refused = await service.rpc("subscriptions/listen", listen, token=READER, era="modern")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.json()["error"]["data"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 1


async def test_a_long_call_still_streams_behind_the_hold() -> None:
    """The held start goes out with the first keep-alive comment or message: a call that outlasts the
    keep-alive interval is answered as the stream it is."""
    async with harness.running(config(False, stream_keepalive_seconds=0.05)) as service:
        response = await service.rpc("tools/call", {"name": "one_at_a_time", "arguments": {"seconds": 0.3}})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert final(response)["result"]["isError"] is False
    assert_rate_headers(response, 0)


# --- the hold itself, message by message -------------------------------------------------------------

SSE_START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/event-stream"), (b"mcp-session-id", b"s1")],
}
CURSOR = b"id: 1\r\nretry: 1000\r\ndata: \r\n\r\n"
REFUSAL = b'event: message\r\ndata: {"jsonrpc":"2.0","id":1,"error":{"code":-32000}}\r\n\r\n'
ANSWER = b'event: message\r\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\r\n\r\n'


def body(chunk: bytes, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": more}


async def played(call: CallContext, *messages: Message) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    hold = SseStartHold(send, call)
    for message in messages:
        await hold(message)
    return sent


async def test_the_hold_reframes_a_refusal_behind_a_resumption_cursor() -> None:
    call = CallContext(request_id="r", http_status=429)
    sent = await played(call, SSE_START, body(CURSOR), body(REFUSAL), body(b"", more=False))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"mcp-session-id"] == b"s1"  # the transport's other headers are kept
    assert sent[1]["body"] == b'{"jsonrpc":"2.0","id":1,"error":{"code":-32000}}'
    assert headers[b"content-length"] == str(len(sent[1]["body"])).encode()


async def test_the_hold_releases_an_admitted_stream_unchanged_and_in_order() -> None:
    call = CallContext(request_id="r")
    messages = [SSE_START, body(CURSOR), body(ANSWER), body(b"", more=False)]
    assert await played(call, *messages) == messages


async def test_a_keep_alive_comment_releases_the_hold() -> None:
    call = CallContext(request_id="r")
    comment = body(b": keep-alive\n\n")
    assert await played(call, SSE_START, comment) == [SSE_START, comment]


async def test_json_and_error_responses_pass_the_hold_untouched() -> None:
    call = CallContext(request_id="r", http_status=429)
    start: Message = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    assert await played(call, start, body(b"{}", more=False)) == [start, body(b"{}", more=False)]
