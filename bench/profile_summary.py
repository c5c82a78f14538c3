"""Summarize py-spy's collapsed stacks (``--format raw``): where the server's CPU time goes.

Each line of the input is ``thread;frame;frame;... count`` with frames ``function (file:line)``.
The report gives, in % of all samples: time per component (the innermost frame of ours or of a
library we can name), top functions by self time, and top functions by inclusive time (a function
counted once per sample however often it recurses).

    python -m bench.profile_summary results/bench/profile-.../service-legacy-c64.txt
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# (component, substring of the file path); the first match wins, so specific before general.
COMPONENTS: list[tuple[str, str]] = [
    ("app.http.observe (edge: request id, HTTP metrics, access log)", "app/http/observe.py"),
    ("app.http.gate", "app/http/gate.py"),
    ("app.middleware.request_scope", "app/middleware/request_scope.py"),
    ("app.middleware.authorization", "app/middleware/authorization.py"),
    ("app.middleware.rate_limit", "app/middleware/rate_limit.py"),
    ("app.middleware (other stages)", "app/middleware/"),
    ("app.observability", "app/observability/"),
    ("app.auth", "app/auth/"),
    ("app.backends", "app/backends/"),
    ("app.log (JSON formatter, redaction)", "app/log.py"),
    ("app (other)", "app/"),
    ("bench pack (the tool)", "bench/"),
    ("pythonjsonlogger", "pythonjsonlogger/"),
    ("logging (stdlib)", "logging/"),
    ("json (stdlib)", "json/"),
    ("opentelemetry", "opentelemetry/"),
    # opentelemetry is a namespace package: py-spy names its files from below the namespace.
    ("opentelemetry: OTLP export (encoding, HTTP)", "common/_internal/"),
    ("opentelemetry: OTLP export (encoding, HTTP)", "http/trace_exporter/"),
    ("opentelemetry: OTLP export (encoding, HTTP)", "common/http.py"),
    ("opentelemetry: OTLP export (encoding, HTTP)", "transport/_requests.py"),
    ("opentelemetry: OTLP export (encoding, HTTP)", "requests/"),
    ("opentelemetry: OTLP export (encoding, HTTP)", "urllib3/"),
    ("opentelemetry: OTLP export (encoding, HTTP)", "protobuf/"),
    ("opentelemetry: span processor", "_shared_internal/"),
    ("opentelemetry: span processor", "trace/export/"),
    ("opentelemetry: spans (SDK)", "trace/__init__.py"),
    ("opentelemetry: spans (SDK)", "trace/span.py"),
    ("opentelemetry: spans (SDK)", "trace/sampling.py"),
    ("opentelemetry: spans (SDK)", "attributes/__init__.py"),
    ("opentelemetry: spans (SDK)", "resources/__init__.py"),
    ("opentelemetry: spans (SDK)", "util/instrumentation.py"),
    ("opentelemetry: spans (SDK)", "_decorator.py"),
    ("secrets/random (request ids: os.urandom)", "secrets.py"),
    ("secrets/random (request ids: os.urandom)", "random.py"),
    ("prometheus_client", "prometheus_client/"),
    ("redis client", "redis/"),
    ("mcp SDK: streamable HTTP transport", "mcp/server/streamable_http"),
    ("mcp SDK: 2026-07-28 transport", "mcp/server/_streamable_http_modern"),
    ("mcp SDK: lowlevel server", "mcp/server/lowlevel/"),
    ("mcp SDK: MCPServer / tools", "mcp/server/mcpserver/"),
    ("mcp SDK: auth", "mcp/server/auth/"),
    ("mcp SDK: other", "mcp/"),
    ("mcp_types", "mcp_types/"),
    ("pydantic", "pydantic"),
    ("sse_starlette", "sse_starlette/"),
    ("starlette", "starlette/"),
    ("uvicorn", "uvicorn/"),
    ("anyio", "anyio/"),
    ("asyncio (stdlib)", "asyncio/"),
    ("uvloop", "uvloop"),
    ("contextvars/contextlib/weakref (stdlib)", "contextlib.py"),
    ("contextvars/contextlib/weakref (stdlib)", "weakref.py"),
]


def component(path: str) -> str:
    # py-spy names files relative to their sys.path entry ("asyncio/base_events.py", "app/log.py").
    rooted = "/" + path
    for name, needle in COMPONENTS:
        if ("/" + needle if not needle.startswith("/") else needle) in rooted:
            return name
    top = path.split("/", 1)[0] if "/" in path else path.split(".", 1)[0]
    return f"other: {top}"


GENERIC = ("anyio", "asyncio (stdlib)", "uvloop", "contextvars/contextlib/weakref (stdlib)", "stdlib (other)")


def owner(frames: list[tuple[str, str]]) -> str:
    """The innermost frame that is not generic machinery (anyio, asyncio, stdlib): who asked for the work."""
    for _, file in reversed(frames):
        name = component(file)
        if name not in GENERIC and not name.startswith("other"):
            return name
    return component(frames[-1][1]) if frames else "other"


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        body, _, count = line.rpartition(" ")
        frames = []
        for raw in body.split(";"):
            match = _FRAME.match(raw.strip())
            if match:
                frames.append((match["func"], match["file"]))
            else:
                frames.append((raw.strip(), ""))
        stacks.append((frames, int(count)))
    return stacks


def short(func: str, file: str) -> str:
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{func} ({file})"


def summarize_file(path: Path, top: int = 30) -> str:
    stacks = parse(path)
    total = sum(count for _, count in stacks) or 1
    by_component: Counter[str] = Counter()
    by_owner: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours_inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        if not frames:
            continue
        func, file = frames[-1]
        self_time[short(func, file)] += count
        by_component[component(file)] += count
        by_owner[owner(frames)] += count
        seen = set()
        for f, fl in frames:
            key = short(f, fl)
            if key not in seen:
                seen.add(key)
                inclusive[key] += count
                if fl.startswith(("app/", "bench/")):
                    ours_inclusive[key] += count
    lines = [f"{total} samples from {path.name}", "", "time by component (leaf frame), % of samples:"]
    for name, count in by_component.most_common(top):
        lines.append(f"  {count * 100 / total:5.1f}%  {name}")
    lines += ["", "time by owner (innermost frame that is not anyio/asyncio/stdlib machinery), % of samples:"]
    for name, count in by_owner.most_common(top):
        lines.append(f"  {count * 100 / total:5.1f}%  {name}")
    lines += ["", f"top {top} functions by self time:"]
    for name, count in self_time.most_common(top):
        lines.append(f"  {count * 100 / total:5.1f}%  {name}")
    lines += ["", f"top {top} functions by inclusive time:"]
    for name, count in inclusive.most_common(top):
        lines.append(f"  {count * 100 / total:5.1f}%  {name}")
    lines += ["", "the service's own functions by inclusive time:"]
    for name, count in ours_inclusive.most_common(top):
        lines.append(f"  {count * 100 / total:5.1f}%  {name}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(summarize_file(Path(sys.argv[1]), top=int(sys.argv[2]) if len(sys.argv) > 2 else 30))
