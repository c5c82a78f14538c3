"""A task's run is traced: a span of its own (a trace root: the request is gone) linked to the
tools/call span that created the task."""

from __future__ import annotations

import httpx2

from tests.conftest import ServiceFactory
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.rpc import final, modern_headers, modern_meta


def test_a_task_run_has_a_span_linked_to_the_creating_call(
    service_factory: ServiceFactory, otlp_receiver: OtlpReceiver
) -> None:
    service = service_factory(
        {
            "MCPS_PACKS": "conformance",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "MCPS_LONGRUN_CHECK_SECONDS": "0.05",
            "MCPS_TRACE_SAMPLE_RATIO": "1.0",  # every root traced (the default samples 1 in 10)
        }
    )
    meta = {
        **modern_meta(),
        "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "slow_compute", "arguments": {"seconds": 0}, "_meta": meta},
    }
    created = final(httpx2.post(service.mcp_url, headers=modern_headers("tools/call", "slow_compute"), json=body))
    assert created["result"]["resultType"] == "task"
    spans = otlp_receiver.wait_for(
        lambda spans: {"tools/call slow_compute", "task slow_compute"} <= {s.name for s in spans}
    )
    call = next(s for s in spans if s.name == "tools/call slow_compute")
    run = next(s for s in spans if s.name == "task slow_compute")
    assert run.parent_span_id == ""  # its own trace
    assert run.links == [(call.trace_id, call.span_id, {"mcp_service.link": "task_created_by"})]
    assert run.attributes["gen_ai.tool.name"] == "slow_compute"
    assert run.attributes["mcp_service.task.attempt"] == 1
