"""The observing edge: request ids, metrics and one access line for every request."""

from __future__ import annotations

import re

import pytest

from tests.inproc import logs
from tests.inproc.harness import OUTSIDER, Era, InProcessService, error_of
from tests.observability.scrape import Scrape
from tests.support.rpc import final

pytestmark = [pytest.mark.anyio, pytest.mark.inproc]

DURATION_COUNT = "mcp_server_operation_duration_seconds_count"
HTTP_REQUESTS = "mcp_service_http_requests_total"
MINTED = re.compile(r"^[0-9a-f]{16}$")


async def scrape(service: InProcessService) -> Scrape:
    response = await service.http.get("/metrics")
    assert response.status_code == 200
    return Scrape(response.text)


async def test_a_sane_request_id_is_echoed(service: InProcessService, era: Era) -> None:
    response = await service.rpc("tools/list", era=era, headers={"x-request-id": "proxy-id.42:a_b"})
    assert response.headers["x-request-id"] == "proxy-id.42:a_b"


@pytest.mark.parametrize("incoming", [None, "has spaces", "x" * 129, "semi;colon"])
async def test_a_missing_or_odd_request_id_is_replaced(service: InProcessService, incoming: str | None) -> None:
    headers = {"x-request-id": incoming} if incoming is not None else {}
    response = await service.rpc("tools/list", headers=headers)
    assert MINTED.match(response.headers["x-request-id"])


async def test_the_request_id_is_the_one_in_error_bodies(service: InProcessService, era: Era) -> None:
    response = await service.rpc(
        "tools/call", {"name": "cheap", "arguments": {}}, token=OUTSIDER, era=era, headers={"x-request-id": "rid-1"}
    )
    assert error_of(final(response)["result"])["request_id"] == "rid-1"


async def test_probes_answer_with_a_request_id(service: InProcessService) -> None:
    assert MINTED.match((await service.http.get("/health/live")).headers["x-request-id"])


async def test_counters_move_per_outcome(service: InProcessService, era: Era) -> None:
    before = await scrape(service)
    await service.call("cheap", era=era)
    await service.call("cheap", token=OUTSIDER, era=era)
    await service.call("refuse", {"code": "NOT_FOUND"}, era=era)
    await service.call("explode", era=era)
    after = await scrape(service)

    def calls(tool: str, outcome: str) -> float:
        labels = {"mcp_method_name": "tools/call", "gen_ai_tool_name": tool, "outcome": outcome}
        return after.delta(before, DURATION_COUNT, **labels)

    assert calls("cheap", "ok") == 1
    assert calls("cheap", "denied") == 1
    assert calls("refuse", "tool_error") == 1
    assert calls("explode", "error") == 1
    assert after.delta(before, HTTP_REQUESTS, route="/mcp", method="POST", status="200") == 4
    assert after.value("mcp_service_mcp_requests_in_flight", mcp_method_name="tools/call") == 0
    assert after.value("mcp_service_ready") == 1


async def test_stage_decisions_are_counted(service: InProcessService, era: Era) -> None:
    before = await scrape(service)
    await service.call("echo_cached", {"text": "m"}, era=era)
    await service.call("echo_cached", {"text": "m"}, era=era)
    await service.call("note_write", {"text": "w", "idempotency_key": "c1"}, era=era)
    await service.call("note_write", {"text": "w", "idempotency_key": "c1"}, era=era)
    await service.call("note_write", {"text": "other", "idempotency_key": "c1"}, era=era)
    after = await scrape(service)
    cache = "mcp_service_cache_requests_total"
    assert after.delta(before, cache, gen_ai_tool_name="echo_cached", result="miss") == 1
    assert after.delta(before, cache, gen_ai_tool_name="echo_cached", result="hit") == 1
    idempotency = "mcp_service_idempotency_requests_total"
    for result in ("new", "replay", "conflict"):
        assert after.delta(before, idempotency, gen_ai_tool_name="note_write", result=result) == 1, result
    decisions = "mcp_service_rate_limit_decisions_total"
    assert after.delta(before, decisions, decision="allowed", source="memory") == 5


async def test_refusals_at_the_edge_are_counted_by_status(service: InProcessService) -> None:
    before = await scrape(service)
    await service.rpc("tools/list", token=None)
    after = await scrape(service)
    assert after.delta(before, HTTP_REQUESTS, route="/mcp", method="POST", status="401") == 1


async def test_one_access_line_per_mcp_request(service: InProcessService, era: Era) -> None:
    with logs.captured() as lines:
        response = await service.rpc("tools/call", {"name": "cheap", "arguments": {}}, era=era)
    request_id = response.headers["x-request-id"]
    access = [line for line in lines if line.logger.startswith("mcp_service.") and line.fields]
    assert len(access) == 1, access
    line = access[0]
    assert line.logger == "mcp_service.mcp"
    assert line.request_id == request_id
    assert line.fields["status"] == 200
    assert line.fields["path"] == "/mcp"
    assert line.fields["http_method"] == "POST"
    assert line.fields["tool"] == "cheap"
    assert line.fields["outcome"] == "ok"
    assert line.fields["principal"] == "alice"


async def test_one_access_line_for_a_request_refused_at_the_edge(service: InProcessService) -> None:
    with logs.captured() as lines:
        response = await service.rpc("tools/list", token=None)
    access = [line for line in lines if line.fields]
    assert [(line.logger, line.fields["status"]) for line in access] == [("mcp_service.access", 401)]
    assert access[0].request_id == response.headers["x-request-id"]


async def test_probes_are_not_logged_by_default(service: InProcessService) -> None:
    with logs.captured() as lines:
        await service.http.get("/health/live")
        await service.http.get("/health/ready")
        await service.http.get("/metrics")
        await service.http.get("/no-such-page")
    assert [(line.fields["path"], line.fields["status"]) for line in lines if line.fields] == [("other", 404)]
