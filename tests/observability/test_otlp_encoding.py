"""Our OTLP span encoding (app/observability/otlp_encoding.py) against the library's, parsed by the official classes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from app.observability.otlp_encoding import encode_spans


class Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: object) -> SpanExportResult:
        self.spans.extend(spans)  # type: ignore[call-overload]
        return SpanExportResult.SUCCESS


def provider(resource: dict[str, object]) -> tuple[TracerProvider, Collect]:
    sink = Collect()
    tracer_provider = TracerProvider(resource=Resource.create(resource))  # type: ignore[arg-type]
    tracer_provider.add_span_processor(SimpleSpanProcessor(sink))
    return tracer_provider, sink


def assert_same(spans: list[ReadableSpan]) -> None:
    encoded = encode_spans(spans)
    ours = ExportTraceServiceRequest()
    ours.ParseFromString(encoded)
    assert ours == library_encode(spans)
    assert encoded == library_encode(spans).SerializeToString()  # the same bytes, field order included


@pytest.fixture
def traced() -> Iterator[tuple[TracerProvider, Collect]]:
    tracer_provider, sink = provider({"service.name": "test", "service.instance.id": str(uuid.uuid4())})
    yield tracer_provider, sink
    tracer_provider.shutdown()


def test_spans_of_every_shape_encode_like_the_library(traced: tuple[TracerProvider, Collect]) -> None:
    tracer_provider, sink = traced
    tracer = tracer_provider.get_tracer("mcp.server", "2.3.0", schema_url="https://opentelemetry.io/schemas/1.26.0")
    other = tracer_provider.get_tracer("mcp-service")
    remote = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "v1"), ("other", "x")]),
    )
    from opentelemetry import trace

    with tracer.start_as_current_span(
        "tools/call echo",
        kind=SpanKind.SERVER,
        context=trace.set_span_in_context(NonRecordingSpan(remote)),
        attributes={
            "s": "text é ✓",
            "empty": "",
            "t": True,
            "f": False,
            "i": 1,
            "zero": 0,
            "neg": -42,
            "big": 2**62,
            "x": 1.5,
            "nx": -0.0,
            "strs": ["a", "b"],
            "ints": [1, -2, 3],
            "bools": [True, False],
            "floats": [0.25],
            "nothing": [],
        },
        links=[Link(remote, {"mcp_service.link": "http_request"}), Link(remote)],
    ) as span:
        span.add_event("retry", {"attempt": 2})
        span.add_event("bare")
        with other.start_as_current_span("GET github", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "upstream 503"))
        span.set_status(StatusCode.OK)
    with tracer.start_as_current_span("root", kind=SpanKind.INTERNAL) as root:
        root.set_status(StatusCode.ERROR)
    for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER):
        with other.start_as_current_span(f"k{kind.value}", kind=kind):
            pass
    assert len(sink.spans) == 5
    assert_same(sink.spans)
    assert_same(sink.spans[:1])
    assert encode_spans([]) == b""
    assert library_encode([]).SerializeToString() == b""


def test_several_resources_and_a_scope_without_version() -> None:
    first, first_sink = provider({"service.name": "a"})
    second, second_sink = provider({"service.name": "b", "k": 7})
    for tracer_provider in (first, second):
        with tracer_provider.get_tracer("scope-without-version").start_as_current_span("s"):
            pass
        tracer_provider.shutdown()
    assert_same([*first_sink.spans, *second_sink.spans, *first_sink.spans])


values = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=5), max_size=3),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(
    name=st.text(max_size=30),
    attributes=st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=8),
    event_attributes=st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=3),
)
def test_random_attributes_encode_like_the_library(
    name: str, attributes: dict[str, object], event_attributes: dict[str, object]
) -> None:
    tracer_provider, sink = provider({"service.name": "fuzz"})
    with tracer_provider.get_tracer("fuzz").start_as_current_span(name, attributes=attributes) as span:  # type: ignore[arg-type]
        span.add_event("e", event_attributes)  # type: ignore[arg-type]
    tracer_provider.shutdown()
    assert_same(sink.spans)
    assert_same(sink.spans)  # again, now from the cache of encoded attribute pairs
