"""OTLP/protobuf encoding of finished spans, written out directly, and the exporter that uses it.

Why not the library's encoder: `opentelemetry-exporter-otlp-proto-common` builds a protobuf
object per span, per attribute and per value before serializing them; the export thread runs on
the same core as the requests, so that cost is paid by every traced call (the largest share of
tracing's cost; the figures are in docs/performance.md). This module writes the same bytes
(the wire format of ``ExportTraceServiceRequest``, opentelemetry-proto 1.x) in one pass, and
keeps the encoding of each attribute key/value pair it has seen (span attributes repeat: method
names, tool names, outcomes), so a typical span is cheap to write. tests/observability/
test_otlp_encoding.py parses the output with the official protobuf classes and compares it with
the library's encoding for spans of every shape (attributes of each type, events, links, status,
remote parents, several resources and scopes).

Only the encoding is ours: `FastOTLPSpanExporter` is the library's OTLP/HTTP exporter (endpoint,
headers, compression, TLS, timeouts and retries from the ``OTEL_EXPORTER_OTLP_*`` variables) with
its ``export`` step fed these bytes.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

logger = logging.getLogger(__name__)

_KIND = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_STATUS = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}
_HAS_IS_REMOTE = 0x100  # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = 0x200  # SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_SCALARS = frozenset({str, bool, int, float, bytes})  # attribute values cached by (type, value)
_PAIR_CACHE_LIMIT = 4096  # distinct (key, value) pairs kept encoded

# (field number, key, type, value) -> the encoded field; the type because True == 1 == 1.0 as dict keys.
_pairs: dict[tuple[int, str, type, Any], bytes] = {}


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, bytes, messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _uint(number: int, value: int) -> bytes:
    """A varint field, omitted at its default (0), as protobuf does."""
    return _varint(number << 3) + _varint(value) if value else b""


def _fixed64(number: int, value: int) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<Q", value) if value else b""


def _fixed32(number: int, value: int) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<I", value) if value else b""


def _string(number: int, value: str | None) -> bytes:
    return _field(number, value.encode()) if value else b""


def _any_value(value: Any) -> bytes:
    """An AnyValue message (the library's ``_encode_value`` rules, same order of checks)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return _varint(2 << 3) + _varint(int(value))  # bool_value = 2, written even when false
    if isinstance(value, str):
        return _field(1, value.encode())
    if isinstance(value, int):
        return _varint(3 << 3) + _varint(value & 0xFFFFFFFFFFFFFFFF)  # int64 as two's complement
    if isinstance(value, float):
        return _varint(4 << 3 | 1) + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _field(7, value)
    if isinstance(value, Sequence):
        return _field(5, b"".join(_field(1, _any_value(item)) for item in value))
    if isinstance(value, Mapping):
        return _field(6, b"".join(_field(1, _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"invalid attribute value type {type(value).__name__}")


def _key_value(key: str, value: Any) -> bytes:
    return _field(1, key.encode()) + _field(2, _any_value(value))


def _attributes(number: int, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    parts = []
    for key, value in attributes.items():
        hashable = type(value) in _SCALARS
        cache_key = (number, key, type(value), value)
        encoded = _pairs.get(cache_key) if hashable else None
        if encoded is None:
            try:
                encoded = _field(number, _key_value(key, value))
            except TypeError:
                logger.exception("span attribute %s not encodable; dropped", key)
                continue
            if hashable and len(_pairs) < _PAIR_CACHE_LIMIT:
                _pairs[cache_key] = encoded
        parts.append(encoded)
    return b"".join(parts)


def _flags(parent: SpanContext | None) -> int:
    return _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)


def _trace_state(context: SpanContext) -> bytes:
    state = context.trace_state
    return _string(3, ",".join(f"{key}={value}" for key, value in state.items())) if state else b""


# Fixed parts of a span, pre-encoded: tags of the ids and times, kind, flags and plain statuses.
_IDS = struct.Struct(">BBQQBBQ")  # trace id (field 1, 16 bytes as two big-endian halves), span id (field 2)
_PARENT = struct.Struct(">BBQ")  # parent span id (field 4)
_TIMES = struct.Struct("<BQBQ")  # start (field 7) and end (field 8) times, fixed64
_TRACE_ID_TAG, _SPAN_ID_TAG, _PARENT_TAG, _START_TAG, _END_TAG = 0x0A, 0x12, 0x22, 0x39, 0x41
_KIND_FIELD = {kind: _uint(6, number) for kind, number in _KIND.items()}
_SPAN_FLAGS = {False: _fixed32(16, _HAS_IS_REMOTE), True: _fixed32(16, _HAS_IS_REMOTE | _IS_REMOTE)}
_STATUS_FIELD = {code: _field(15, _uint(3, number)) for code, number in _STATUS.items()}
_NAME_CACHE_LIMIT = 1024
_names: dict[str, bytes] = {}


def _name(name: str) -> bytes:
    encoded = _names.get(name)
    if encoded is None:
        encoded = _string(5, name)
        if len(_names) < _NAME_CACHE_LIMIT:
            _names[name] = encoded
    return encoded


def _span(span: ReadableSpan) -> bytes:
    context = span.get_span_context()
    assert context is not None  # a finished SDK span always has one
    parent = span.parent
    trace_id = context.trace_id
    parts = [
        _IDS.pack(_TRACE_ID_TAG, 16, trace_id >> 64, trace_id & 0xFFFFFFFFFFFFFFFF, _SPAN_ID_TAG, 8, context.span_id),
    ]
    if context.trace_state:
        parts.append(_trace_state(context))
    if parent is not None:
        parts.append(_PARENT.pack(_PARENT_TAG, 8, parent.span_id))
    parts.append(_name(span.name))
    parts.append(_KIND_FIELD[span.kind])
    start, end = span.start_time or 0, span.end_time or 0
    if start and end:
        parts.append(_TIMES.pack(_START_TAG, start, _END_TAG, end))
    else:
        parts.append(_fixed64(7, start) + _fixed64(8, end))
    parts.append(_attributes(9, span.attributes))
    if span.dropped_attributes:
        parts.append(_uint(10, span.dropped_attributes))
    for event in span.events:
        parts.append(
            _field(
                11,
                _fixed64(1, event.timestamp)
                + _string(2, event.name)
                + _attributes(3, event.attributes)
                + _uint(4, event.dropped_attributes),
            )
        )
    if span.dropped_events:
        parts.append(_uint(12, span.dropped_events))
    for link in span.links:
        linked = link.context
        parts.append(
            _field(
                13,
                _field(1, linked.trace_id.to_bytes(16, "big"))
                + _field(2, linked.span_id.to_bytes(8, "big"))  # no trace_state: the library sends none either
                + _attributes(4, link.attributes)
                + _uint(5, link.dropped_attributes)
                + _fixed32(6, _flags(linked)),
            )
        )
    if span.dropped_links:
        parts.append(_uint(14, span.dropped_links))
    status = span.status
    if status.description:
        parts.append(_field(15, _string(2, status.description) + _uint(3, _STATUS[status.status_code])))
    else:
        parts.append(_STATUS_FIELD[status.status_code])
    parts.append(_SPAN_FLAGS[parent is not None and parent.is_remote])
    return b"".join(parts)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """A serialized ``ExportTraceServiceRequest``: spans grouped by resource, then by scope."""
    grouped: dict[Any, dict[Any, list[bytes]]] = {}
    resources: dict[int, Any] = {}
    for span in spans:
        resource = span.resource
        key = id(resource)  # the provider shares one Resource object: no per-span hashing of it
        resources.setdefault(key, resource)
        grouped.setdefault(key, {}).setdefault(span.instrumentation_scope, []).append(_span(span))
    out = []
    for key, scopes in grouped.items():
        resource = resources[key]
        scope_spans = []
        for scope, encoded in scopes.items():
            scope_message = _field(1, b"")  # the library writes an empty scope rather than none
            if scope is not None:
                scope_message = _field(
                    1, _string(1, scope.name) + _string(2, scope.version) + _attributes(3, scope.attributes)
                )
            scope_spans.append(
                _field(
                    2,
                    scope_message
                    + b"".join(_field(2, span) for span in encoded)
                    + _string(3, scope.schema_url if scope is not None else None),
                )
            )
        body = _field(1, _attributes(1, resource.attributes)) + b"".join(scope_spans) + _string(3, resource.schema_url)
        out.append(_field(1, body))
    return b"".join(out)


class FastOTLPSpanExporter(OTLPSpanExporter):
    """The library's OTLP/HTTP span exporter, encoding with `encode_spans` above."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        client = getattr(self, "_client", None)
        if client is None or getattr(self, "_shutdown", False):  # another library version: its own path
            return super().export(spans)
        try:
            data = encode_spans(spans)
        except Exception:
            logger.exception("encoding %d spans failed; using the library's encoder", len(spans))
            return super().export(spans)
        limit = getattr(self, "_max_request_size", 0)
        if isinstance(limit, int) and 0 < limit < len(data):
            logger.warning("dropping %d spans: %d bytes exceed the %d-byte request limit", len(spans), len(data), limit)
            return SpanExportResult.FAILURE
        result = client.export(data)
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE
