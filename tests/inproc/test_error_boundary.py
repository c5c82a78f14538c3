"""The error boundary: whatever a tool raises leaves as one structured ``isError`` result."""

from __future__ import annotations

import pytest

from tests.inproc import logs
from tests.inproc.harness import Era, InProcessService, error_of
from tests.support.rpc import final

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]


@pytest.mark.parametrize(
    ("code", "retryable"), [("NOT_FOUND", False), ("CONFLICT", False), ("UPSTREAM_UNAVAILABLE", True)]
)
async def test_service_error_keeps_its_code(service: InProcessService, era: Era, code: str, retryable: bool) -> None:
    result = await service.call("refuse", {"code": code}, era=era)
    error = error_of(result)
    assert error["code"] == code
    assert error["retryable"] is retryable
    assert error["details"] == {"why": "asked to"}
    assert result["content"][0]["text"].startswith(f"{code}: refused with {code}")


async def test_crash_is_internal_error_with_request_id_and_no_detail(service: InProcessService, era: Era) -> None:
    with logs.captured() as lines:
        response = await service.rpc("tools/call", {"name": "explode", "arguments": {}}, era=era)
    result = final(response)["result"]
    error = error_of(result)
    assert error["code"] == "INTERNAL_ERROR"
    assert error["retryable"] is False
    request_id = response.headers["x-request-id"]
    assert error["request_id"] == request_id
    assert request_id in error["message"]
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    # The operator finds the traceback under the id the caller was given.
    crash = [line for line in lines if line.request_id == request_id and line.traceback]
    assert crash
    assert any("raised an unexpected exception" in line.message for line in crash)


async def test_invalid_arguments_name_fields_without_echoing_values(service: InProcessService, era: Era) -> None:
    huge = "x" * 5000
    result = await service.call("bounded", {"text": huge, "n": 99}, era=era)
    error = error_of(result)
    assert error["code"] == "VALIDATION_ERROR"
    assert error["retryable"] is False
    assert {problem["field"] for problem in error["details"]["errors"]} == {"text", "n"}
    assert huge[:50] not in str(result)
    assert "99" not in str(error["details"])


async def test_missing_argument_is_a_validation_error(service: InProcessService, era: Era) -> None:
    error = error_of(await service.call("bounded", {"text": "ok"}, era=era))
    assert error["code"] == "VALIDATION_ERROR"
    assert [problem["field"] for problem in error["details"]["errors"]] == ["n"]


async def test_a_valid_call_is_not_an_error(service: InProcessService, era: Era) -> None:
    result = await service.call("bounded", {"text": "ok", "n": 3}, era=era)
    assert result["isError"] is False
    assert result["structuredContent"] == {"text": "ok", "n": 3}
