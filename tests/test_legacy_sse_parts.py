"""The pieces of the HTTP+SSE transport in process: stream caps, the stream's send, JSON refusals."""

from __future__ import annotations

import json

import anyio
import pytest
from starlette.types import Message

from app.http.legacy_sse import KEEPALIVE_COMMENT, SessionCaps, StreamSend, json_refusals

pytestmark = pytest.mark.anyio


class Sent:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)


def body(text: bytes, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": text, "more_body": more}


async def test_caps_refuse_per_principal_then_per_process_and_free_on_close() -> None:
    caps = SessionCaps(max_total=3, max_per_principal=2)
    scopes = [anyio.CancelScope() for _ in range(3)]
    caps.open("a", scopes[0])
    caps.open("a", scopes[1])
    refusal = caps.refusal("a")
    assert refusal is not None
    assert refusal[:2] == (429, "too_many_sse_sessions")
    caps.open("b", scopes[2])
    full = caps.refusal("c")
    assert full is not None
    assert full[:2] == (503, "sse_sessions_full")
    caps.close("a", scopes[0])
    assert caps.refusal("a") is None
    assert caps.by_principal == {"a": 1, "b": 1}
    caps.close_all()
    assert scopes[1].cancel_called
    assert scopes[2].cancel_called
    assert not scopes[0].cancel_called  # closed already: no longer tracked


async def test_stream_send_drops_the_sdk_pings_and_notes_the_end() -> None:
    sent = Sent()
    send = StreamSend(sent)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send(body(b"event: endpoint\r\ndata: /messages/?session_id=x\r\n\r\n"))
    await send(body(b": ping - 2026-12-06 02:00:00+00:00\r\n\r\n"))
    await send(body(b"", more=False))
    assert [m.get("body") for m in sent.messages[1:]] == [
        b"event: endpoint\r\ndata: /messages/?session_id=x\r\n\r\n",
        b"",
    ]
    assert send.started
    assert send.ended


async def test_stream_send_sends_a_keepalive_comment_after_silence_until_the_end() -> None:
    sent = Sent()
    send = StreamSend(sent)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(send.keep_alive, 0.01)
            while not any(m.get("body") == KEEPALIVE_COMMENT for m in sent.messages):
                await anyio.sleep(0.01)
            await send(body(b"", more=False))
            tasks.cancel_scope.cancel()
    comments = [m for m in sent.messages if m.get("body") == KEEPALIVE_COMMENT]
    assert comments
    assert all(m["more_body"] for m in comments)
    # After the end of the response it sends nothing more and returns.
    count = len(sent.messages)
    with anyio.fail_after(10):
        await send.keep_alive(0.01)
    assert len(sent.messages) == count


async def test_plain_text_refusals_become_json_and_others_pass_untouched() -> None:
    sent = Sent()
    refusals = json_refusals(sent)
    await refusals({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
    await refusals(body(b"Could not find session", more=False))
    start, end = sent.messages
    assert start["status"] == 404
    assert (b"content-type", b"application/json") in start["headers"]
    answer = json.loads(end["body"])
    assert answer["error"] == "unknown_session"
    assert answer["message"].startswith("Could not find session: ")
    assert "GET /sse" in answer["message"]

    passed = Sent()
    accepted = json_refusals(passed)
    await accepted({"type": "http.response.start", "status": 202, "headers": []})
    await accepted(body(b"Accepted", more=False))
    assert passed.messages == [{"type": "http.response.start", "status": 202, "headers": []}, body(b"Accepted", False)]
