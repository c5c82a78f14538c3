"""A span per round of a task's tool, linked to the call that created the task.

A task runs after its request is gone, perhaps on another replica, so its span cannot be a child
of the creating call's span: it starts a trace of its own with a link to it (the link's ids are
kept with the task, so a re-run elsewhere links the same way). Nothing happens while tracing is off.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags

from app.longrun.records import TaskRecord
from app.observability.tracing import active_tracer


def link_of_current() -> str | None:
    """The current span's ids ("<trace>-<span>", hex), when tracing is on and a span is current."""
    if active_tracer() is None:
        return None
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}-{context.span_id:016x}" if context.is_valid else None


def _link(value: str | None) -> list[Link]:
    trace_hex, _, span_hex = (value or "").partition("-")
    try:
        context = SpanContext(int(trace_hex, 16), int(span_hex, 16), is_remote=True, trace_flags=TraceFlags(1))
    except ValueError:
        return []
    return [Link(context, {"mcp_service.link": "task_created_by"})] if context.is_valid else []


@contextmanager
def task_round(record: TaskRecord) -> Iterator[None]:
    tracer = active_tracer()
    if tracer is None:
        yield
        return
    attributes: dict[str, str | int] = {"gen_ai.tool.name": record.tool, "mcp_service.task.attempt": record.attempts}
    with tracer.start_as_current_span(
        f"task {record.tool}",
        context=Context(),  # a root: the run may start inside the creating request's context
        kind=SpanKind.INTERNAL,
        links=_link(record.trace_link),
        attributes=attributes,
    ):
        yield
