"""Bad input at volume: hypothesis over the JSON-RPC envelope, the headers, and every tool's arguments.

The oracle, for every request: an answer within the time bound (no hang), never a 5xx, never a
dropped connection (no crash), and every refusal structured: a JSON-RPC error (code and message;
never -32603, the internal error), or a tool result with ``isError`` and ``structuredContent.code``
(never INTERNAL_ERROR: a tool that crashed on its input), or an HTTP 4xx whose body is JSON (the
SDK's plain-text and empty refusals are rewritten by the edge, app/http/gate.py). Afterwards the
process is alive, ready, and logged no unhandled exception.

Violations are collected rather than raised, so a run always sends its full, bounded volume and
reports every kind of failure at once (no shrinking: each example is one HTTP request).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fleet.conftest import KEYS, Fleet, fleet_env
from tests.support.fake_github import FakeGitHub
from tests.support.fake_open_meteo import FakeOpenMeteo
from tests.support.fuzz_schema import JSON, NASTY_TEXT, arguments_for, mutated
from tests.support.redis_server import RedisServer
from tests.support.rpc import messages

pytestmark = pytest.mark.fleet

LEGACY, MODERN = "2025-11-25", "2026-07-28"
TIME_BOUND = 10.0  # seconds; the tool timeout is 5 s
# Deterministic by default (the same examples on every run, so CI is stable); FUZZ_RANDOM=1 draws new
# ones and FUZZ_SCALE=N multiplies the volume, to go looking for trouble.
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))
ENVELOPE_EXAMPLES = 600 * SCALE
EXAMPLES_PER_TOOL = 20 * SCALE  # x 2 eras, valid and mutated arguments
METHODS = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "server/discover",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "tasks/get",
    "nonexistent/method",
]
# The conformance pack is a fixture for the official suite, not a production pack: its deliberate
# crash, and its 2026-07-28-only tools answering InputRequiredResult on the handshake era (where the
# SDK turns that into -32603 "Handler returned an invalid result"), are tolerated and counted apart.
FIXTURE_CRASHES = {"test_error_handling"}


def tolerated(tool: str | None, modern: bool, problem: str) -> bool:
    if tool in FIXTURE_CRASHES and problem.startswith("tool crashed"):
        return True
    era_only = tool is not None and tool.startswith(("test_input_required_result", "test_streaming_elicitation"))
    return era_only and not modern and problem.startswith("JSON-RPC internal error")


# Long-lived by design (a stream stays open): not sent by the fuzzer.
STREAMING_METHODS = {"subscriptions/listen"}


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        derandomize=not RANDOM,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )


def meta(**extra: Any) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
        **extra,
    }


JSON_VALUES = st.one_of(st.integers(), st.text(max_size=10))
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@st.composite
def header_sets(draw: st.DrawFn, method: str | None, name: str | None) -> dict[str, str]:
    headers = {
        "content-type": draw(
            st.sampled_from(["application/json"] * 8 + ["application/json; charset=utf-8", "text/plain", ""])
        ),
        "accept": draw(
            st.sampled_from(
                ["application/json, text/event-stream"] * 6 + ["application/json", "text/event-stream", "*/*"]
            )
        ),
    }
    auth = draw(st.sampled_from(["valid"] * 8 + ["missing", "garbage", "basic", "other-key"]))
    if auth == "valid":
        headers["authorization"] = f"Bearer {KEYS['fuzzer']}"
    elif auth == "garbage":
        headers["authorization"] = "Bearer " + draw(HEADER_TEXT)
    elif auth == "basic":
        headers["authorization"] = "Basic dXNlcjpwYXNz"
    elif auth == "other-key":
        headers["authorization"] = f"Bearer {KEYS['reader']}"  # valid, with few scopes
    version = draw(
        st.sampled_from([LEGACY, MODERN, MODERN, "2025-06-18", "2024-11-05", "1999-01-01", "", None]) | HEADER_TEXT
    )
    if version is not None:
        headers["mcp-protocol-version"] = version
    if draw(st.booleans()):
        headers["mcp-method"] = method if method is not None and draw(st.booleans()) else draw(HEADER_TEXT)
    if name is not None or draw(st.booleans()):
        headers["mcp-name"] = name if name is not None and draw(st.booleans()) else draw(HEADER_TEXT)
    if draw(st.booleans()):
        headers[draw(st.sampled_from(["mcp-param-region", "x-request-id", "mcp-session-id", "last-event-id"]))] = draw(
            HEADER_TEXT
        )
    return {k: v for k, v in headers.items() if v != "" or k == "content-type"}


@st.composite
def envelopes(draw: st.DrawFn) -> tuple[dict[str, str], bytes, str]:
    """(headers, body, description): raw bytes, any JSON, near-valid JSON-RPC, batches."""
    kind = draw(st.sampled_from(["rpc", "rpc", "rpc", "json", "batch", "bytes"]))
    method = draw(st.sampled_from(METHODS) | st.text(max_size=30)).strip()
    name = draw(
        st.none() | st.sampled_from(["health_check", "create_task", "get_weather", "nope"]) | st.text(max_size=20)
    )
    headers = draw(header_sets(method, name))
    if kind == "bytes":
        return headers, draw(st.binary(max_size=300)), "bytes"
    if kind == "json":
        return headers, json.dumps(draw(JSON)).encode(), "json"
    params: Any = draw(
        st.one_of(
            st.none(),
            JSON,
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.just(name) if name is not None else NASTY_TEXT,
                    "arguments": JSON,
                    "uri": st.sampled_from(["task://t_aaaaaaaaaaaaaaaa", "mcp://service/info", "file:///etc/passwd"])
                    | NASTY_TEXT,
                    "cursor": NASTY_TEXT,
                    "_meta": st.one_of(st.just(meta()), JSON, st.builds(meta, progressToken=JSON_VALUES)),
                    "requestState": NASTY_TEXT,
                    "inputResponses": JSON,
                },
            ),
        )
    )
    message: dict[str, Any] = {"jsonrpc": draw(st.sampled_from(["2.0"] * 6 + ["1.0", 2])), "method": method}
    if draw(st.integers(0, 9)) > 0:
        message["id"] = draw(
            st.one_of(st.integers(), st.text(max_size=10), st.none(), st.floats(allow_nan=False), JSON)
        )
    if params is not None:
        message["params"] = params
    if draw(st.booleans()):
        message.pop(draw(st.sampled_from(list(message))), None)
    if kind == "batch":
        return headers, json.dumps([message, *draw(st.lists(JSON, max_size=3))]).encode(), f"batch {method!r}"
    return headers, json.dumps(message).encode(), f"rpc {method!r}"


def verdict(response: httpx2.Response) -> str | None:
    """None when the answer is acceptable; else what is wrong with it."""
    status = response.status_code
    body = response.text
    if status >= 500:
        return f"HTTP {status}: {body[:300]}"
    if status == 202:
        return None if not body.strip() else f"202 with a body: {body[:200]}"
    if status >= 400:
        try:
            parsed = response.json()
        except ValueError:
            return f"HTTP {status} refusal is not JSON: {body[:200]!r}"
        if not isinstance(parsed, dict) or "error" not in parsed:
            return f"HTTP {status} JSON without an error: {body[:200]}"
        error = parsed["error"]
        if isinstance(error, dict):
            if not isinstance(error.get("code"), int) or not isinstance(error.get("message"), str):
                return f"HTTP {status} malformed JSON-RPC error: {body[:200]}"
            if error["code"] == -32603:
                return f"HTTP {status} internal error: {body[:300]}"
        elif not isinstance(error, str):
            return f"HTTP {status} odd error body: {body[:200]}"
        return None
    try:
        found = messages(response)
    except ValueError:
        return f"HTTP {status} unparsable: {body[:200]!r}"
    responses = [m for m in found if isinstance(m, dict) and ("result" in m or "error" in m)]
    if not responses:
        return f"HTTP {status} without a JSON-RPC response: {body[:200]!r}"
    for message in responses:
        if "error" in message:
            error = message["error"]
            if not isinstance(error, dict) or not isinstance(error.get("code"), int):
                return f"malformed JSON-RPC error: {message}"
            if error["code"] == -32603:
                return f"JSON-RPC internal error: {json.dumps(message)[:300]}"
            continue
        result = message["result"]
        if isinstance(result, dict) and result.get("isError"):
            structured = result.get("structuredContent")
            code = structured.get("code") if isinstance(structured, dict) else None
            if not isinstance(code, str):
                return f"error result without structuredContent.code: {json.dumps(result)[:300]}"
            if code == "INTERNAL_ERROR":
                return f"tool crashed: {json.dumps(result)[:400]}"
    return None


class Fuzzer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx2.Client(timeout=TIME_BOUND + 5)
        self.sent = 0
        self.violations: list[str] = []
        self.slowest = (0.0, "")
        self.statuses: dict[int, int] = {}
        self.tolerated: dict[str, int] = {}

    def send(
        self, headers: dict[str, str], body: bytes, what: str, tool: str | None = None, modern: bool = False
    ) -> None:
        self.sent += 1
        # Header values go out as UTF-8 bytes (obs-text on the wire), without controls and surrounding
        # whitespace, which no HTTP client can send (h11 refuses them).
        wire = {k: "".join(c for c in v if c >= " " and c != "\x7f").strip().encode() for k, v in headers.items()}
        started = time.monotonic()
        try:
            response = self.http.post(self.url, content=body, headers=wire)
        except httpx2.HTTPError as exc:
            self.violations.append(f"{what}: no answer ({type(exc).__name__}) to {body[:200]!r} {headers}")
            return
        elapsed = time.monotonic() - started
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if elapsed > self.slowest[0]:
            self.slowest = (elapsed, what)
        problem = verdict(response)
        if elapsed > TIME_BOUND:
            problem = f"took {elapsed:.1f}s"
        if problem is not None and tolerated(tool, modern, problem):
            kind = f"{what}: {problem.split(':')[0]}"
            self.tolerated[kind] = self.tolerated.get(kind, 0) + 1
            return
        if problem is not None:
            self.violations.append(f"{what}: {problem}\n    request {body[:300]!r} {headers}")

    def call_tool(self, tool: str, arguments: Any, modern: bool) -> None:
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "authorization": f"Bearer {KEYS['fuzzer']}",
            "mcp-protocol-version": MODERN if modern else LEGACY,
        }
        if modern:
            headers |= {"mcp-method": "tools/call", "mcp-name": tool}
            params["_meta"] = meta()
        body = json.dumps({"jsonrpc": "2.0", "id": self.sent, "method": "tools/call", "params": params}).encode()
        self.send(headers, body, f"{tool} ({'modern' if modern else 'legacy'})", tool, modern)


def fuzz_tool(fuzzer: Fuzzer, name: str, schema: dict[str, Any]) -> None:
    """Valid arguments (from the schema) and broken ones, in both eras."""

    @fuzz_settings(EXAMPLES_PER_TOOL)
    @given(arguments=st.one_of(arguments_for(schema), mutated(schema)), modern=st.booleans())
    def run(arguments: Any, modern: bool) -> None:
        fuzzer.call_tool(name, arguments, modern)

    run()


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("fuzz")
    with FakeGitHub() as github, FakeOpenMeteo() as meteo:
        redis = RedisServer(directory / "redis").start()
        env = fleet_env(
            directory / "site",
            redis.url,
            1,
            MCPS_PACKS="system,tasks,github,weather,github_tasks,conformance",
            MCPS_GITHUB_API_URL=github.api_url,
            MCPS_WEATHER_GEOCODING_URL=meteo.geocoding_url,
            MCPS_WEATHER_FORECAST_URL=meteo.forecast_url,
            MCPS_TOOL_TIMEOUT_SECONDS="5",
            MCPS_UPSTREAM_TOTAL_TIMEOUT_SECONDS="3",
        )
        fleet = Fleet(directory, redis, env, 1)
        try:
            yield fleet.start()
        finally:
            fleet.stop()


def test_fuzz_envelopes_headers_and_every_tool(fuzz_target: Fleet) -> None:
    replica = fuzz_target.replicas[0]
    fuzzer = Fuzzer(replica.mcp_url)
    started = time.monotonic()

    @fuzz_settings(ENVELOPE_EXAMPLES)
    @given(envelopes())
    def envelope(case: tuple[dict[str, str], bytes, str]) -> None:
        headers, body, what = case
        fuzzer.send(headers, body, what)

    envelope()
    envelope_requests = fuzzer.sent

    listing = fuzzer.http.post(
        replica.mcp_url,
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": LEGACY,
            "authorization": f"Bearer {KEYS['fuzzer']}",
        },
    )
    tools = next(m for m in messages(listing) if "result" in m)["result"]["tools"]
    assert len(tools) > 20
    for tool in tools:
        fuzz_tool(fuzzer, tool["name"], tool["inputSchema"])

    elapsed = time.monotonic() - started
    live = httpx2.get(f"{replica.base_url}/health/live", timeout=5)
    ready = httpx2.get(f"{replica.base_url}/health/ready", timeout=5)
    assert replica.proc is not None
    alive = replica.proc.poll() is None
    crashes = [
        r
        for r in replica.log_records()
        if "Exception in ASGI application" in r.get("message", "") or r.get("level") == "CRITICAL"
    ]
    print(
        f"\nfuzz: {fuzzer.sent} requests in {elapsed:.1f}s ({envelope_requests} envelopes/headers, "
        f"{fuzzer.sent - envelope_requests} tool calls over {len(tools)} tools); "
        f"statuses {dict(sorted(fuzzer.statuses.items()))}; "
        f"slowest {fuzzer.slowest[0]:.2f}s ({fuzzer.slowest[1]}); {len(fuzzer.violations)} violations"
    )
    kinds: dict[str, int] = {}
    for violation in fuzzer.violations:
        kind = ":".join(violation.split("\n")[0].split(":")[:2])[:110]
        kinds[kind] = kinds.get(kind, 0) + 1
    for kind, count in sorted(kinds.items(), key=lambda item: -item[1])[:25]:
        print(f"  {count:4d} x {kind}")
    for violation in fuzzer.violations[:3]:
        print("  e.g.", violation[:1200])
    print(f"  tolerated (conformance fixtures): {fuzzer.tolerated}")
    assert alive
    assert live.status_code == 200
    assert ready.status_code == 200
    assert not crashes, crashes[:3]
    assert not fuzzer.violations, f"{len(fuzzer.violations)} violations, first: {fuzzer.violations[0][:800]}"
