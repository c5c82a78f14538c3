"""Response framing (`app.http.framing`): plain JSON unless the call may send something first.

Both eras, raw HTTP (the Content-Type the client gets) and the SDK's client (progress still
arrives). Framing ``auto`` is the default; ``sse`` and ``json`` force one framing.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx2
import pytest
from mcp.types import LoggingMessageNotificationParams

from app.http.framing import FramingRule
from app.settings import Settings
from tests.inproc import harness
from tests.inproc.harness import ALICE, Era, InProcessService
from tests.support.rpc import final, legacy_headers, messages, modern_headers, modern_meta

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]

JSON = "application/json"
SSE = "text/event-stream"
LOG_LEVEL = "io.modelcontextprotocol/logLevel"
_ids = itertools.count(1)


def call_body(tool: str, era: Era, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": tool, "arguments": {}}
    sent_meta = {**(modern_meta() if era == "modern" else {}), **(meta or {})}
    if sent_meta:
        params["_meta"] = sent_meta
    return {"jsonrpc": "2.0", "id": next(_ids), "method": "tools/call", "params": params}


def headers_for(era: Era, tool: str = "cheap", **extra: str) -> dict[str, str]:
    sent = modern_headers("tools/call", tool) if era == "modern" else legacy_headers()
    return {**sent, "authorization": f"Bearer {ALICE}", **extra}


async def post(
    service: InProcessService,
    tool: str,
    era: Era,
    meta: dict[str, Any] | None = None,
    **headers: str,
) -> httpx2.Response:
    return await service.http.post("/mcp", headers=headers_for(era, tool, **headers), json=call_body(tool, era, meta))


def content_type(response: httpx2.Response) -> str:
    return response.headers["content-type"].split(";")[0]


def methods(response: httpx2.Response) -> list[str]:
    return [message["method"] for message in messages(response) if "method" in message]


# --- auto (the default) ---------------------------------------------------------------------------


async def test_a_plain_call_is_answered_with_json(service: InProcessService, era: Era) -> None:
    response = await post(service, "cheap", era)
    assert response.status_code == 200
    assert content_type(response) == JSON
    assert final(response)["result"]["isError"] is False


async def test_a_call_with_a_progress_token_streams_its_progress(service: InProcessService, era: Era) -> None:
    response = await post(service, "progress", era, {"progressToken": "p-1"})
    assert response.status_code == 200
    assert content_type(response) == SSE
    progress = [m["params"] for m in messages(response) if m.get("method") == "notifications/progress"]
    assert [(p["progressToken"], p["progress"]) for p in progress] == [("p-1", 1), ("p-1", 2)]
    assert final(response)["result"]["content"][0]["text"] == "progressed"


async def test_the_same_call_without_a_token_is_json(service: InProcessService, era: Era) -> None:
    response = await post(service, "progress", era)
    assert content_type(response) == JSON
    assert final(response)["result"]["content"][0]["text"] == "progressed"


async def test_an_escaped_progress_token_key_is_still_seen(service: InProcessService, era: Era) -> None:
    body = json.dumps(call_body("progress", era, {"progressToken": "p-2"})).replace(
        "progressToken", "progress\\u0054oken"
    )
    response = await service.http.post("/mcp", headers=headers_for(era, "progress"), content=body)
    assert content_type(response) == SSE
    assert "notifications/progress" in methods(response)


async def test_a_declared_notifying_tool_streams_its_log_messages(service: InProcessService, era: Era) -> None:
    # 2026-07-28 sends log messages only to a request that opted in; the handshake era always does.
    meta = {LOG_LEVEL: "info"} if era == "modern" else None
    response = await post(service, "chatty", era, meta)
    assert content_type(response) == SSE
    logs = [m["params"] for m in messages(response) if m.get("method") == "notifications/message"]
    assert [LoggingMessageNotificationParams.model_validate(p).data for p in logs] == ["chatty says hello"]
    assert final(response)["result"]["content"][0]["text"] == "chatted"


async def test_an_undeclared_tools_log_messages_are_not_sent_on_a_plain_call(service: InProcessService) -> None:
    """The contract of the declaration: a tool that does not declare ``notifies`` is framed as quiet."""
    response = await post(service, "muttering", "legacy")
    assert content_type(response) == JSON
    assert final(response)["result"]["content"][0]["text"] == "muttered"


@pytest.mark.parametrize("accept", ["*/*", "application/json, text/event-stream;q=0.9", "text/*, application/*"])
async def test_any_accept_that_takes_both_gets_json(service: InProcessService, era: Era, accept: str) -> None:
    response = await post(service, "cheap", era, accept=accept)
    assert response.status_code == 200
    assert content_type(response) == JSON


async def test_a_client_that_accepts_only_sse_gets_sse(service: InProcessService, era: Era) -> None:
    """The spec asks clients to list both; one that lists only SSE is answered with SSE, not refused."""
    response = await post(service, "cheap", era, accept="text/event-stream")
    assert response.status_code == 200
    assert content_type(response) == SSE
    assert final(response)["result"]["isError"] is False
    streamed = await post(service, "progress", era, {"progressToken": "p-3"}, accept="text/event-stream")
    assert "notifications/progress" in methods(streamed)


async def test_a_client_that_accepts_only_json_gets_json_even_for_a_streaming_call(
    service: InProcessService, era: Era
) -> None:
    """It could not read a stream: its result comes as JSON (what the tool sent before it is dropped)."""
    response = await post(service, "progress", era, {"progressToken": "p-4"}, accept="application/json")
    assert response.status_code == 200
    assert content_type(response) == JSON
    assert final(response)["result"]["content"][0]["text"] == "progressed"


async def test_an_accept_with_neither_type_is_refused(service: InProcessService, era: Era) -> None:
    response = await post(service, "cheap", era, accept="text/html")
    assert response.status_code == 406
    assert response.json()["error"]["code"] == -32600


async def test_notifications_are_accepted(service: InProcessService, era: Era) -> None:
    body = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    response = await service.http.post("/mcp", headers=headers_for(era), json=body)
    assert response.status_code == 202
    assert response.content == b""


async def test_a_batch_gets_the_answer_it_always_got(service: InProcessService, era: Era) -> None:
    response = await service.http.post("/mcp", headers=headers_for(era), json=[call_body("cheap", era)])
    assert response.status_code == 400
    assert content_type(response) == JSON
    assert "error" in response.json()


async def test_a_bad_id_is_still_an_invalid_request(service: InProcessService, era: Era) -> None:
    body = {**call_body("cheap", era), "id": 1.5}
    response = await service.http.post("/mcp", headers=headers_for(era), json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32600


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_the_sdk_client_gets_progress_and_plain_answers(service: InProcessService, mode: str) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with service.sdk_client(mode=mode) as client:
        plain = await client.call_tool("cheap", {})
        streamed = await client.call_tool("progress", {}, progress_callback=on_progress)
    assert plain.is_error is False
    assert streamed.is_error is False
    assert seen == [(1, 2, "step 1"), (2, 2, "step 2")]


# --- forced framings -------------------------------------------------------------------------------


class TestForcedSse:
    @pytest.fixture
    def settings(self) -> Settings:
        return harness.settings(response_framing="sse")

    async def test_a_plain_handshake_call_is_an_event_stream(self, service: InProcessService) -> None:
        response = await post(service, "cheap", "legacy")
        assert content_type(response) == SSE
        assert final(response)["result"]["isError"] is False

    async def test_progress_still_arrives(self, service: InProcessService, era: Era) -> None:
        response = await post(service, "progress", era, {"progressToken": 7})
        assert content_type(response) == SSE
        assert methods(response).count("notifications/progress") == 2


class TestForcedJson:
    @pytest.fixture
    def settings(self) -> Settings:
        return harness.settings(response_framing="json")

    async def test_even_a_progress_call_is_plain_json(self, service: InProcessService, era: Era) -> None:
        response = await post(service, "progress", era, {"progressToken": 7})
        assert content_type(response) == JSON
        assert final(response)["result"]["content"][0]["text"] == "progressed"


class TestStateful:
    """Stateful sessions keep one SSE manager: a session's framing is fixed when the SDK creates it."""

    @pytest.fixture
    def settings(self) -> Settings:
        return harness.settings(transport_mode="stateful")

    async def test_session_calls_stay_on_sse(self, service: InProcessService) -> None:
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        headers = headers_for("legacy")
        opened = await service.http.post("/mcp", headers=headers, json=init)
        assert content_type(opened) == SSE
        session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"]}
        await service.http.post("/mcp", headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        response = await service.http.post("/mcp", headers=session, json=call_body("cheap", "legacy"))
        assert content_type(response) == SSE
        assert final(response)["result"]["isError"] is False


# --- the rule on its own -----------------------------------------------------------------------------

RULE = FramingRule(["chatty", "test_logging_tool"])


@pytest.mark.parametrize(
    ("body", "may_stream"),
    [
        (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cheap","arguments":{}}}', False),
        (b'  {"jsonrpc":"2.0","id":1,"method":"tools/list"}', False),
        (b'{"id":1,"method":"tools/call","params":{"name":"cheap","_meta":{"progressToken":1}}}', True),
        (b'{"id":1,"method":"tools/call","params":{"name":"cheap","_meta":{"progressToken" : 1}}}', True),
        (b'{"id":1,"method":"tools/call","params":{"name":"chatty"}}', True),
        (
            b'{"id":1,"method":"tools/call","params":{"name":"cheap","_meta":{"io.modelcontextprotocol/logLevel":"info"}}}',
            True,
        ),
        (b'{"id":1,"method":"subscriptions/listen","params":{}}', True),
        (b'[{"id":1,"method":"tools/list"}]', True),
        (b"not json", True),
        (b"", True),
        # escapes: parsed, so an escaped key is seen and an escaped argument alone does not stream
        (b'{"id":1,"method":"tools/call","params":{"name":"cheap","_meta":{"progress\\u0054oken":1}}}', True),
        (b'{"id":1,"method":"subscriptions\\/listen"}', True),
        (b'{"id":1,"method":"tools/call","params":{"name":"chat\\u0074y"}}', True),
        (b'{"id":1,"method":"tools/call","params":{"name":"cheap","arguments":{"text":"a\\nb"}}}', False),
        (
            b'{"id":1,"method":"tools/call","params":{"name":"cheap","arguments":{"t":"\\u0022progressToken\\u0022"}}}',
            False,
        ),
        (b'{"id":1,"method":"tools/call","params":"\\n"}', False),
        (b'{"id":1,"method":"tools/call","params":{"_meta":"\\n"}}', False),
        (b'{"id":1,"method":"tools/call","params":{"name":"cheap"},"x":"\\', True),  # not JSON
        # a false positive costs only SSE framing
        (b'{"id":1,"method":"tools/call","params":{"name":"cheap","arguments":{"text":"chatty"}}}', True),
    ],
)
def test_rule(body: bytes, may_stream: bool) -> None:
    assert RULE.may_stream(body) is may_stream


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "framing"),
    [
        ({}, "auto"),
        ({"response_framing": "sse"}, "sse"),
        ({"json_response": True}, "json"),
        ({"json_response": False}, "sse"),
        ({"json_response": True, "response_framing": "json"}, "json"),
    ],
)
def test_framing_setting(values: dict[str, Any], framing: str) -> None:
    assert harness.settings(**values).framing == framing


def test_a_contradictory_legacy_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="MCPS_JSON_RESPONSE=true contradicts MCPS_RESPONSE_FRAMING=auto"):
        harness.settings(json_response=True, response_framing="auto")
