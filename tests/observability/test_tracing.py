"""Traces to a local OTLP/HTTP receiver: the span tree of one tool call, _meta parenting, trace ids in logs."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.server.mcpserver import MCPServer

from app.observability import mcp_span
from tests.conftest import ServiceFactory
from tests.support.clients import client_with_token
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.redis_server import RedisServer
from tests.support.rpc import call_tool, final, legacy_headers, modern_headers, modern_meta, tool_result

pytestmark = pytest.mark.anyio

SECRET_ARGUMENT = "argument-value-that-must-not-leak"


def tracing_env(receiver: OtlpReceiver, packs_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **packs_env,
        "MCPS_PACKS": "obs",
        "MCPS_RATE_LIMIT_CAPACITY": "1000",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # export within milliseconds, not the default 5 s
        "MCPS_TRACE_SAMPLE_RATIO": "1.0",  # these tests look at every call's spans (the default samples 1 in 10)
        **extra,
    }


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.trace_id == parent.trace_id and s.parent_span_id == parent.span_id]


async def test_span_tree_of_one_tool_call(
    service_factory: ServiceFactory, otlp_receiver: OtlpReceiver, packs_env: dict[str, str], tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "redis") as redis:
        service = service_factory(
            tracing_env(
                otlp_receiver,
                packs_env,
                MCPS_REDIS_URL=redis.url,
                MCPS_CACHE_L1_TTL_SECONDS="0",
                MCPS_TRACE_HTTP_SPANS="true",
                MCPS_TRACE_REDIS_COMMANDS="true",
            )
        )
        async with client_with_token(service.mcp_url, None) as client:
            result = await client.call_tool("obs_echo", {"text": SECRET_ARGUMENT})
            assert not result.is_error

        def tool_tree_done(spans: list[ReceivedSpan]) -> bool:
            mcp = [s for s in spans if s.name == "tools/call obs_echo"]
            return bool(mcp) and any(s.span_id == mcp[0].parent_span_id for s in spans)

        spans = otlp_receiver.wait_for(tool_tree_done)
        service.stop()

    mcp = next(s for s in spans if s.name == "tools/call obs_echo")
    http = next(s for s in spans if s.span_id == mcp.parent_span_id)
    # HTTP server span (root: the client sent no traceparent) -> MCP server span -> Redis client spans.
    assert (http.name, http.kind, http.parent_span_id) == ("POST /mcp", "SERVER", "")
    assert http.attributes["http.request.method"] == "POST"
    assert http.attributes["http.route"] == "/mcp"
    assert http.attributes["http.response.status_code"] == 200
    assert mcp.kind == "SERVER"
    assert mcp.attributes["mcp.method.name"] == "tools/call"
    assert mcp.attributes["gen_ai.tool.name"] == "obs_echo"
    assert mcp.attributes["mcp_service.outcome"] == "ok"
    assert mcp.attributes["mcp_service.cache.result"] == "miss"
    assert mcp.attributes["mcp_service.rate_limit.decision"] == "allowed"
    assert mcp.attributes["mcp_service.rate_limit.source"] == "redis"
    assert mcp.attributes["mcp_service.request_id"] == http.attributes["mcp_service.request_id"]
    assert mcp.links == []  # its parent is the HTTP span: nothing to link
    redis_spans = [s for s in children(spans, mcp) if s.attributes.get("db.system") == "redis"]
    assert redis_spans, [s.name for s in children(spans, mcp)]
    assert all(s.kind == "CLIENT" for s in redis_spans)
    operations = {s.attributes.get("mcp_service.backend.operation") for s in redis_spans}
    assert {"acquire", "cache set"} <= operations, operations
    assert "EVALSHA" in {s.name for s in redis_spans}
    # Resource: service name and version; no argument value anywhere.
    assert mcp.resource["service.name"] == "mcp-service"
    assert mcp.resource["service.version"]
    for span in spans:
        assert SECRET_ARGUMENT not in repr(span.attributes), span.name
    # Readiness probes (the fixture polled /health/ready, which pings Redis) make no spans.
    assert not [s.name for s in spans if s.name.startswith("GET /health") or s.name == "PING"]

    # The request's one access line (the MCP line with the HTTP fields) carries the MCP span's ids.
    records = service.log_records()
    access = next(r for r in records if r.get("logger") == "mcp_service.mcp" and r.get("tool") == "obs_echo")
    assert (access["trace_id"], access["span_id"]) == (mcp.trace_id, mcp.span_id)
    assert access["status"] == 200
    assert not [
        r for r in records if r.get("logger") == "mcp_service.access" and r.get("request_id") == access["request_id"]
    ]


async def test_by_default_one_span_per_call_continuing_the_callers_trace(
    service_factory: ServiceFactory, otlp_receiver: OtlpReceiver, packs_env: dict[str, str], tmp_path: Path
) -> None:
    """No HTTP span, no Redis command spans: the MCP span alone, child of the header's traceparent."""
    with RedisServer(tmp_path / "redis") as redis:
        service = service_factory(tracing_env(otlp_receiver, packs_env, MCPS_REDIS_URL=redis.url))
        caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
        plain = call_tool(service.base_url, "obs_echo", {"text": "a"})
        assert not plain.is_error
        headers = {**modern_headers("tools/call", "obs_echo"), "traceparent": f"00-{caller_trace}-{caller_span}-01"}
        body = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "obs_echo", "arguments": {"text": "b"}, "_meta": modern_meta()},
        }
        assert "result" in final(httpx2.post(service.mcp_url, headers=headers, json=body, timeout=10))
        spans = otlp_receiver.wait_for(lambda spans: sum(s.name == "tools/call obs_echo" for s in spans) >= 2)
        time.sleep(0.3)  # six export intervals: anything else made for these calls has arrived too
        spans = otlp_receiver.snapshot()
        service.stop()
    assert sorted(s.name for s in spans) == ["tools/call obs_echo", "tools/call obs_echo"]
    continued = next(s for s in spans if s.trace_id == caller_trace)
    assert continued.parent_span_id == caller_span
    assert continued.attributes["mcp_service.rate_limit.source"] == "redis"
    assert continued.attributes["mcp_service.outcome"] == "ok"
    root = next(s for s in spans if s.trace_id != caller_trace)
    assert root.parent_span_id == ""


def test_meta_traceparent_wins_and_the_http_span_is_linked(
    service_factory: ServiceFactory, otlp_receiver: OtlpReceiver, packs_env: dict[str, str]
) -> None:
    service = service_factory(tracing_env(otlp_receiver, packs_env, MCPS_TRACE_HTTP_SPANS="true"))
    header_trace, header_span = secrets.token_hex(16), secrets.token_hex(8)
    meta_trace, meta_span = secrets.token_hex(16), secrets.token_hex(8)
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "obs_echo",
            "arguments": {"text": "x"},
            "_meta": {**modern_meta(), "traceparent": f"00-{meta_trace}-{meta_span}-01"},
        },
    }
    headers = {**modern_headers("tools/call", "obs_echo"), "traceparent": f"00-{header_trace}-{header_span}-01"}
    response = httpx2.post(service.mcp_url, headers=headers, json=body, timeout=10)
    assert "result" in final(response)
    spans = otlp_receiver.wait_for(
        lambda spans: (
            {"POST /mcp", "tools/call obs_echo"} <= {s.name for s in spans if s.trace_id != ""}
            and any(s.trace_id == header_trace for s in spans)
        )
    )
    http = next(s for s in spans if s.name == "POST /mcp" and s.trace_id == header_trace)
    mcp = next(s for s in spans if s.name == "tools/call obs_echo")
    assert http.parent_span_id == header_span  # the HTTP span continues the header's trace
    assert (mcp.trace_id, mcp.parent_span_id) == (meta_trace, meta_span)  # _meta wins for the MCP span
    assert mcp.links == [(http.trace_id, http.span_id, {"mcp_service.link": "http_request"})]


def test_error_marking_of_the_mcp_span(
    service_factory: ServiceFactory, otlp_receiver: OtlpReceiver, packs_env: dict[str, str]
) -> None:
    """The SDK's rules, kept by our span stage: tool-error results, JSON-RPC errors, and success."""
    service = service_factory(tracing_env(otlp_receiver, packs_env))
    assert not tool_result(call_tool(service.base_url, "obs_echo", {"text": "x"}, modern=True)).get("isError")
    assert tool_result(call_tool(service.base_url, "obs_fail")).get("isError")
    unknown = {"jsonrpc": "2.0", "id": "r-1", "method": "resources/read", "params": {"uri": "task://nope"}}
    assert "error" in final(httpx2.post(service.mcp_url, headers=legacy_headers(), json=unknown, timeout=10))
    spans = otlp_receiver.wait_for(lambda spans: len(spans) >= 3)
    service.stop()
    by_name = {s.name: s for s in spans}
    ok, failed, read = by_name["tools/call obs_echo"], by_name["tools/call obs_fail"], by_name["resources/read"]
    assert (ok.status, ok.scope, ok.kind) == ("UNSET", "mcp-python-sdk", "SERVER")
    assert "error.type" not in ok.attributes
    assert ok.attributes["mcp.protocol.version"] == "2026-07-28"
    assert ok.attributes["gen_ai.operation.name"] == "execute_tool"
    assert (failed.status, failed.attributes["error.type"]) == ("ERROR", "tool_error")
    assert failed.attributes["mcp_service.outcome"] == "tool_error"
    assert read.status == "ERROR"
    assert read.attributes["error.type"] == read.attributes["rpc.response.status_code"]
    assert read.attributes["jsonrpc.request.id"] == "r-1"
    assert "gen_ai.tool.name" not in read.attributes


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_SDK_DISABLED": "true"},
        {"OTEL_TRACES_SAMPLER": "always_off"},
        {"OTEL_TRACES_EXPORTER": "none"},
    ],
    ids=["sdk-disabled", "sampler-off", "exporter-none"],
)
def test_no_spans_when_disabled_or_not_sampled(
    service_factory: ServiceFactory, otlp_receiver: OtlpReceiver, packs_env: dict[str, str], env: dict[str, str]
) -> None:
    service = service_factory(tracing_env(otlp_receiver, packs_env, **env))
    assert not call_tool(service.base_url, "obs_echo", {"text": "x"}).is_error
    time.sleep(0.5)  # ten export intervals
    service.stop()
    assert otlp_receiver.snapshot() == []


def test_head_sampling_honours_the_callers_decision_and_samples_roots_at_the_ratio(
    service_factory: ServiceFactory, otlp_receiver: OtlpReceiver, packs_env: dict[str, str]
) -> None:
    """Ratio 0: no root trace is recorded, yet a caller's sampled traceparent (header or _meta) always is,
    and an unsampled one is not."""
    service = service_factory(tracing_env(otlp_receiver, packs_env, MCPS_TRACE_SAMPLE_RATIO="0"))
    sampled_header, sampled_meta, unsampled = (secrets.token_hex(16) for _ in range(3))

    def call(text: str, header: str | None, meta: str | None) -> None:
        headers = modern_headers("tools/call", "obs_echo")
        if header is not None:
            headers["traceparent"] = header
        meta_fields = modern_meta() if meta is None else {**modern_meta(), "traceparent": meta}
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "obs_echo", "arguments": {"text": text}, "_meta": meta_fields},
        }
        assert "result" in final(httpx2.post(service.mcp_url, headers=headers, json=body, timeout=10))

    for n in range(20):
        call(f"root {n}", None, None)
    call("header", f"00-{sampled_header}-{secrets.token_hex(8)}-01", None)
    call("meta", None, f"00-{sampled_meta}-{secrets.token_hex(8)}-01")
    call("unsampled", f"00-{unsampled}-{secrets.token_hex(8)}-00", None)
    otlp_receiver.wait_for(lambda spans: {sampled_header, sampled_meta} <= {s.trace_id for s in spans})
    time.sleep(0.3)  # six export intervals: anything else made for these calls has arrived too
    spans = otlp_receiver.snapshot()
    service.stop()
    assert sorted(s.trace_id for s in spans) == sorted([sampled_header, sampled_meta])
    assert all(s.name == "tools/call obs_echo" for s in spans)


def test_the_default_sampler_is_parent_based_at_one_in_ten(
    service_factory: ServiceFactory, otlp_receiver: OtlpReceiver, packs_env: dict[str, str]
) -> None:
    env = tracing_env(otlp_receiver, packs_env)
    del env["MCPS_TRACE_SAMPLE_RATIO"]
    service = service_factory(env)
    records = service.records_when(lambda found: any("tracing on" in str(r.get("message")) for r in found))
    service.stop()
    started = next(str(r["message"]) for r in records if "tracing on" in str(r.get("message")))
    assert "ParentBased{root:TraceIdRatioBased{0.1}" in started


def test_no_tracing_without_an_endpoint(service_factory: ServiceFactory, packs_env: dict[str, str]) -> None:
    service = service_factory({**packs_env, "MCPS_PACKS": "obs"})
    assert call_tool(service.base_url, "obs_echo", {"text": "x"}).status_code == 200
    loggers = ("mcp_service.mcp", "mcp_service.access")
    records = service.records_when(lambda found: any(r.get("logger") in loggers for r in found))
    lines = [r for r in records if r.get("logger") in loggers]
    assert lines
    assert all("trace_id" not in r and r.get("request_id") for r in lines)
    assert not any("tracing on" in str(r.get("message")) for r in records)


def test_our_span_stage_takes_the_place_of_the_sdks() -> None:
    server: MCPServer[Any] = MCPServer("span-stage")
    before = [type(stage).__name__ for stage in server.middleware]
    assert "OpenTelemetryMiddleware" in before
    assert mcp_span.install(server.middleware)
    after = [type(stage).__name__ for stage in server.middleware]
    assert after == ["McpSpanMiddleware" if name == "OpenTelemetryMiddleware" else name for name in before]
    assert not mcp_span.install(server.middleware)  # nothing left to replace: never two span stages
