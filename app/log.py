"""JSON logs to stdout, one object per line, configured before the SDK's ``basicConfig`` can run.

``MCPServer()`` calls ``logging.basicConfig``; that is a no-op once the root logger has a handler,
which is why `configure_logging` must run first (the CLI and the app factory both call it).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any, TextIO

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from app.call import current_request_id

# The SDK logs per-request lifecycle at INFO ("Created new transport", "Terminating session", ...):
# in stateless mode that is one line per request of pure noise.
_CHATTY_SDK_LOGGERS = (
    "mcp.server.streamable_http",
    "mcp.server.streamable_http_manager",
    "mcp.server.lowlevel.server",
    "mcp.server.runner",
    "mcp.server._streamable_http_modern",
)

# HTTP client libraries log every request with its full URL at INFO (query strings may carry
# tokens, hosts are internal details): warnings and errors only, whatever the root level.
_QUIET_LOGGERS = ("httpx2", "httpcore2", "httpx", "httpcore", "urllib3")

# Loggers that write response bodies at DEBUG (sse_starlette: every SSE chunk, tenant data included):
# capped at INFO whatever the root level, so DEBUG logging never copies answers into the logs.
_BODY_LOGGERS = ("sse_starlette.sse",)

# The SDK's transport security logs a refused Host or Origin header verbatim, and a header can be as
# long as the server accepts: the line is cut (see `_TrimmedLine`).
_ECHOING_LOGGERS = ("mcp.server.transport_security",)
MAX_ECHOED_CHARS = 256


class _TrimmedLine(logging.Filter):
    """Cuts a record's rendered message to `MAX_ECHOED_CHARS`: for loggers that echo request input."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > MAX_ECHOED_CHARS:
            record.msg = f"{message[:MAX_ECHOED_CHARS]}... ({len(message)} characters, cut)"
            record.args = None
        return True


# Anything that looks like a credential is masked before a line leaves the process: bearer tokens,
# API keys in our format, and JWTs (three base64url segments starting with a JSON header).
_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}\s]+(?:\s+[^'\",}\s]+)?"),
    re.compile(r"()\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    re.compile(r"()\bmcps_[A-Za-z0-9_-]{16,}"),
)


def redact(text: str) -> str:
    """Mask credentials in free text (log messages, error strings)."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1[REDACTED]", text)
    return text


class _ServiceJsonFormatter(JsonFormatter):
    """Adds the request id (and, while tracing, the trace and span ids) and redacts; the library does the JSON.

    Access lines (one per request, the hot path) take a shorter road: they carry their fields in
    one ``fields`` dict (see `access_fields`) built from values the service produced or already
    sanitized (route labels, registered names, outcomes), so they skip the library's scan of the
    record's attributes and the redaction passes; their timestamp is formatted once per second
    (what that saves a line is in docs/performance.md).
    """

    _second = -1
    _stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] | None = getattr(record, ACCESS_FIELDS, None)
        if fields is None:
            return super().format(record)
        second = int(record.created)
        if second != self._second:
            self._stamp = self.formatTime(record, self.datefmt)
            self._second = second
        line: dict[str, Any] = {
            "time": self._stamp,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **fields,
        }
        self._add_context(line)
        return _encode(line)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["message"] = redact(str(log_data.get("message", "")))
        if "exc_info" in log_data:
            log_data["exc_info"] = redact(str(log_data["exc_info"]))
        self._add_context(log_data)

    @staticmethod
    def _add_context(log_data: dict[str, Any]) -> None:
        request_id = current_request_id()
        if request_id is not None and "request_id" not in log_data:
            log_data["request_id"] = request_id
        if "trace_id" not in log_data:
            ids = current_ids()
            if ids is not None:
                log_data["trace_id"], log_data["span_id"] = ids


ACCESS_FIELDS = "fields"
# One encoder: json.dumps with any non-default argument builds a new JSONEncoder per call.
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


def access_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``extra=`` for an access line: ``fields`` must hold only service-made or sanitized values."""
    return {ACCESS_FIELDS: fields}


def configure_logging(level: str, *, quiet_sdk: bool = True, stream: TextIO | None = None) -> None:
    """Install the JSON handler on the root logger (replacing any earlier one; idempotent).

    Lines go to ``stream``, stdout by default; the stdio server passes stderr (stdout is its wire)."""
    formatter = _ServiceJsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        json_ensure_ascii=False,
        reserved_attrs=[*RESERVED_ATTRS, "color_message", "taskName", ACCESS_FIELDS],
    )
    # The logging HOWTO's "Optimization" switches: our lines carry none of the caller's file, line,
    # function, thread or process, so nothing computes them.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    sdk_level = logging.WARNING if quiet_sdk and logging.getLevelName(level) < logging.WARNING else None
    for name in _CHATTY_SDK_LOGGERS:
        logging.getLogger(name).setLevel(sdk_level or logging.NOTSET)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in _BODY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level)))
    for name in _ECHOING_LOGGERS:
        echoing = logging.getLogger(name)
        if not any(isinstance(f, _TrimmedLine) for f in echoing.filters):
            echoing.addFilter(_TrimmedLine())
    # uvicorn's own access log is replaced by ours (JSON, with request ids, health excluded).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in W3C hex of the current span, for log lines; None outside a sampled span.

    Untraced, the current span is the API's invalid span, so this costs one context lookup.
    """
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None  # ids of a trace nobody records would lead nowhere
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
