"""The error model: one table per code, and ServiceError keeping the contract of MCPError."""

from __future__ import annotations

import inspect

import pytest
from mcp.shared.exceptions import MCPError

from app.call import CallContext, bind, unbind
from app.errors import SPECS, ErrorCode, ServiceError, contain_crashes


def test_every_code_has_one_spec() -> None:
    assert set(SPECS) == set(ErrorCode)


def test_service_error_is_an_mcp_error_with_its_contract() -> None:
    token = bind(CallContext(request_id="rid-1"))
    try:
        error = ServiceError(ErrorCode.RATE_LIMITED, "rate limited", retry_after_ms=1500, details={"limit": 5})
    finally:
        unbind(token)
    assert isinstance(error, MCPError)
    assert error.code == -32000  # MCPError.code: the JSON-RPC code
    assert error.error_code is ErrorCode.RATE_LIMITED  # the stable name callers match on
    assert error.message == "RATE_LIMITED: rate limited; retry after 1.5 s"
    assert error.data == {
        "code": "RATE_LIMITED",
        "message": "rate limited",
        "retryable": True,
        "details": {"limit": 5},
        "request_id": "rid-1",
        "retry_after_ms": 1500,
        "retryAfterMs": 1500,  # the SEP-3304 draft's name, in the JSON-RPC error only
    }
    assert "retryAfterMs" not in error.to_dict()  # a tool's isError answer keeps its own field
    assert str(error) == "rate limited"
    assert error.spec.outcome == "rate_limited"


@pytest.mark.parametrize(("code", "rpc"), [(ErrorCode.PERMISSION_DENIED, -32003), (ErrorCode.INTERNAL_ERROR, -32603)])
def test_json_rpc_codes_come_from_the_table(code: ErrorCode, rpc: int) -> None:
    assert ServiceError(code, "x").error.code == rpc


def test_call_context_records_the_outcome_from_the_error() -> None:
    call = CallContext(request_id=None)
    call.fail(ServiceError(ErrorCode.PERMISSION_DENIED, "no"))
    assert (call.outcome, call.error_code, call.retry_after_ms) == ("denied", "PERMISSION_DENIED", None)


@pytest.mark.anyio
async def test_a_crash_becomes_internal_error_and_keeps_the_signature() -> None:
    async def tool(city: str, days: int = 3) -> str:
        raise KeyError("hunter2")

    contained = contain_crashes(tool, "forecast")
    assert inspect.signature(contained) == inspect.signature(tool)
    with pytest.raises(ServiceError) as caught:
        await contained("berlin")
    assert caught.value.error_code is ErrorCode.INTERNAL_ERROR
    assert "hunter2" not in str(caught.value.data)


def test_service_errors_raised_by_a_sync_tool_pass_unchanged() -> None:
    def tool() -> None:
        raise ServiceError(ErrorCode.NOT_FOUND, "task not found")

    with pytest.raises(ServiceError) as caught:
        contain_crashes(tool, "get_task")()
    assert caught.value.error_code is ErrorCode.NOT_FOUND
