"""The handshake exchange (`app.http.exchange`): the same answers as the SDK's JSON session path.

Each request is sent, with the same id and headers, to a service with framing ``auto`` (a plain
handshake-era call goes through the exchange) and to one with framing ``json`` (every call goes
through the SDK's JSON session manager); status, content type and body must be equal. The SDK
logs the session it builds for each stateless request, which shows which path served a call.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from app.http.exchange import JsonExchange
from tests.inproc import harness
from tests.inproc.harness import ALICE, READER, InProcessService
from tests.support.rpc import legacy_headers, modern_headers, modern_meta

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]

_ids = itertools.count(1)
PACKS = ("guard", "conformance")
SESSION_LOGGER = "mcp.server.streamable_http_manager"
SESSION_LINE = "Stateless mode: Creating new transport for this request"
REQUEST_ID = re.compile(r"\b[0-9a-f]{16}\b")


def request(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": next(_ids), "method": method}
    if params is not None:
        body["params"] = params
    return body


def headers(**extra: str) -> dict[str, str]:
    return legacy_headers(authorization=f"Bearer {ALICE}", **extra)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[InProcessService, InProcessService]]:
    async with (
        harness.running(harness.settings(PACKS)) as auto,
        harness.running(harness.settings(PACKS, response_framing="json")) as sdk_json,
    ):
        yield auto, sdk_json


def shape(response: httpx2.Response) -> tuple[int, str, str]:
    """Status, media type and body, with the per-call request id (a fresh random value) masked."""
    kind = response.headers.get("content-type", "").split(";")[0]
    return response.status_code, kind, REQUEST_ID.sub("<request id>", response.text)


CASES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("a tool's result", request("tools/call", {"name": "bounded", "arguments": {"text": "hi", "n": 3}}), {}),
    ("a tool's structured error", request("tools/call", {"name": "refuse", "arguments": {"code": "CONFLICT"}}), {}),
    ("a crashing tool", request("tools/call", {"name": "explode", "arguments": {}}), {}),
    ("invalid arguments", request("tools/call", {"name": "bounded", "arguments": {"text": "hi", "n": "many"}}), {}),
    ("an unknown tool", request("tools/call", {"name": "nope", "arguments": {}}), {}),
    ("invalid params", request("tools/call", {"arguments": {}}), {}),
    ("an unknown method", request("nope/nothing", {}), {}),
    ("a listing", request("tools/list"), {}),
    ("ping", request("ping"), {}),
    ("no version header", request("ping"), {"mcp-protocol-version": ""}),
    ("a foreign Host", request("ping"), {"host": "evil.example"}),
    ("a foreign Origin", request("ping"), {"origin": "https://evil.example"}),
]


@pytest.mark.parametrize(("case", "body", "extra"), CASES, ids=[case for case, _, _ in CASES])
async def test_the_exchange_answers_as_the_sdks_json_path(
    pair: tuple[InProcessService, InProcessService], case: str, body: dict[str, Any], extra: dict[str, str]
) -> None:
    sent = {key: value for key, value in headers(**extra).items() if value}
    await same_answer(pair, case, body, sent)


def modern(method: str, params: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return request(method, {**params, "_meta": {**modern_meta(), **(meta or {})}})


def call(tool: str, arguments: dict[str, Any], **extra: str) -> tuple[dict[str, Any], dict[str, str]]:
    sent = modern_headers("tools/call", tool, authorization=f"Bearer {ALICE}", **extra)
    return modern("tools/call", {"name": tool, "arguments": arguments}), sent


def reader_call(tool: str, arguments: dict[str, Any], **extra: str) -> tuple[dict[str, Any], dict[str, str]]:
    body, sent = call(tool, arguments, **extra)
    return body, {**sent, "authorization": f"Bearer {READER}"}


MODERN_CASES: list[tuple[str, tuple[dict[str, Any], Any]]] = [
    ("a tool's result", call("bounded", {"text": "hi", "n": 3})),
    ("a tool's structured error", call("refuse", {"code": "CONFLICT"})),
    ("a crashing tool", call("explode", {})),
    ("invalid arguments", call("bounded", {"text": "hi", "n": "many"})),
    ("an unknown tool", call("nope", {})),
    ("Mcp-Name disagrees with the body", (call("bounded", {"text": "hi", "n": 1})[0], call("cheap", {})[1])),
    (
        "a doubled routing header",
        (call("bounded", {"text": "hi", "n": 1})[0], [*call("bounded", {})[1].items(), ("mcp-method", "tools/call")]),
    ),
    (
        "a declared Mcp-Param header sent",
        reader_call("test_x_mcp_header", {"region": "eu"}, **{"mcp-param-region": "eu"}),
    ),
    ("a declared Mcp-Param header missing", reader_call("test_x_mcp_header", {"region": "eu"})),
    (
        "a declared Mcp-Param header wrong",
        reader_call("test_x_mcp_header", {"region": "eu"}, **{"mcp-param-region": "us"}),
    ),
    ("an undeclared Mcp-Param header", call("bounded", {"text": "hi", "n": 1}, **{"mcp-param-text": "hi"})),
    (
        "a listing",
        (modern("tools/list", {}), modern_headers("tools/list", authorization=f"Bearer {ALICE}")),
    ),
    (
        "no envelope",
        (request("tools/call", {"name": "cheap", "arguments": {}}), call("cheap", {})[1]),
    ),
    (
        "an unsupported version in the envelope",
        (
            modern(
                "tools/call",
                {"name": "cheap", "arguments": {}},
                {"io.modelcontextprotocol/protocolVersion": "2099-01-01"},
            ),
            call("cheap", {})[1],
        ),
    ),
]


@pytest.mark.parametrize(("case", "sent"), MODERN_CASES, ids=[case for case, _ in MODERN_CASES])
async def test_the_exchange_answers_2026_07_28_as_the_sdk_does(
    pair: tuple[InProcessService, InProcessService], case: str, sent: tuple[dict[str, Any], Any]
) -> None:
    body, sent_headers = sent
    await same_answer(pair, case, body, sent_headers)


async def same_answer(
    pair: tuple[InProcessService, InProcessService],
    case: str,
    body: dict[str, Any],
    sent: dict[str, str] | list[tuple[str, str]],
) -> None:
    auto, sdk_json = pair
    ours = await auto.http.post("/mcp", headers=sent, json=body)
    theirs = await sdk_json.http.post("/mcp", headers=sent, json=body)
    assert shape(ours) == shape(theirs), case
    assert ours.status_code in (200, 400, 403, 421), case


async def test_a_plain_call_builds_no_sdk_session_and_a_streaming_one_does(
    pair: tuple[InProcessService, InProcessService], caplog: pytest.LogCaptureFixture
) -> None:
    auto, sdk_json = pair
    caplog.set_level(logging.DEBUG, logger=SESSION_LOGGER)
    plain = request("tools/call", {"name": "bounded", "arguments": {"text": "hi", "n": 1}})

    def sessions() -> int:
        return sum(1 for record in caplog.records if record.name == SESSION_LOGGER and record.message == SESSION_LINE)

    response = await auto.http.post("/mcp", headers=headers(), json=plain)
    assert response.status_code == 200
    assert response.json()["result"]["isError"] is False
    assert sessions() == 0  # served by the exchange
    streaming = request(
        "tools/call", {"name": "bounded", "arguments": {"text": "hi", "n": 1}, "_meta": {"progressToken": 7}}
    )
    response = await auto.http.post("/mcp", headers=headers(), json=streaming)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sessions() == 1  # a call that may stream takes the SDK's SSE session
    response = await sdk_json.http.post("/mcp", headers=headers(), json=request("ping"))
    assert response.status_code == 200
    assert sessions() == 2  # framing json: the SDK's JSON session path


def scope(**extra: bytes) -> dict[str, Any]:
    raw = {"content-type": b"application/json", "mcp-protocol-version": b"2025-11-25", **extra}
    return {"type": "http", "headers": [(name.encode(), value) for name, value in raw.items() if value]}


PLAIN = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}'


@pytest.mark.parametrize(
    ("what", "headers_", "body"),
    [
        ("initialize", {}, b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}'),
        ("a notification", {}, b'{"jsonrpc":"2.0","method":"notifications/initialized"}'),
        ("a response", {}, b'{"jsonrpc":"2.0","id":1,"result":{}}'),
        ("a batch", {}, b"[" + PLAIN + b"]"),
        ("not JSON", {}, b"{nope"),
        ("a bad envelope", {}, b'{"jsonrpc":"1.0","id":1,"method":"ping"}'),
        ("another content type", {"content-type": b"text/plain"}, PLAIN),
        ("no content type", {"content-type": b""}, PLAIN),
    ],
)
def test_what_the_exchange_leaves_to_the_sdk(what: str, headers_: dict[str, bytes], body: bytes) -> None:
    assert JsonExchange.parse(scope(**headers_), body) is None, what


def test_what_the_exchange_takes() -> None:
    parsed = JsonExchange.parse(scope(), PLAIN)
    assert parsed is not None
    assert (parsed.message.method, parsed.message.id, parsed.version, parsed.modern) == (
        "tools/call",
        1,
        "2025-11-25",
        False,
    )
    parsed = JsonExchange.parse(scope(**{"mcp-protocol-version": b""}), PLAIN)
    assert parsed is not None
    assert (parsed.version, parsed.modern) == ("2025-03-26", False)  # the spec's default when absent
    for version in ("2026-07-28", "1999-01-01"):  # the 2026-07-28 ladder judges any other version
        parsed = JsonExchange.parse(scope(**{"mcp-protocol-version": version.encode()}), PLAIN)
        assert parsed is not None
        assert (parsed.version, parsed.modern) == (version, True)
