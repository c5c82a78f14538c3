"""A minimal OTLP/HTTP trace receiver for benchmarks: accepts POST /v1/traces, counts spans.

The service exports its spans here exactly as it would to a collector (OTLP/HTTP protobuf, batched
by the SDK's BatchSpanProcessor), so the cost of tracing is inside the measurement; the receiver
runs on the load generator's core. ``GET /stats`` answers {"requests": n, "spans": n, "bytes": n}.

    python -m bench.otlp_sink --port 4318
"""

from __future__ import annotations

import argparse
import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_LOCK = threading.Lock()
STATS = {"requests": 0, "spans": 0, "bytes": 0}
SPAN_NAMES: dict[str, int] = {}
_OK = ExportTraceServiceResponse().SerializeToString()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        spans = 0
        names: dict[str, int] = {}
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    spans += len(scope_spans.spans)
                    for span in scope_spans.spans:
                        names[span.name] = names.get(span.name, 0) + 1
        with _LOCK:
            STATS["requests"] += 1
            STATS["spans"] += spans
            STATS["bytes"] += len(body)
            for name, count in names.items():
                SPAN_NAMES[name] = SPAN_NAMES.get(name, 0) + count
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(_OK)))
        self.end_headers()
        self.wfile.write(_OK)

    def do_GET(self) -> None:
        with _LOCK:
            payload = json.dumps({**STATS, "span_names": dict(sorted(SPAN_NAMES.items())[:50])}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
