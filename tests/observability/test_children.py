"""`Children` (app/observability/children.py) hands out exactly the children ``labels()`` would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from app.observability.children import Children


def test_the_same_child_as_labels_and_its_updates_are_the_metrics() -> None:
    registry = CollectorRegistry()
    counter = Counter("calls", "calls", ["method", "outcome"], registry=registry)
    histogram = Histogram("seconds", "seconds", ["route"], registry=registry)
    counters, histograms = Children(counter), Children(histogram)

    assert counters.get("tools/call", "ok") is counter.labels("tools/call", "ok")
    assert counters.get("tools/call", "ok") is counters.get("tools/call", "ok")
    assert counters.get("tools/call", "error") is not counters.get("tools/call", "ok")
    counters.get("tools/call", "ok").inc()
    counters.get("tools/call", "ok").inc()
    histograms.get("/mcp").observe(0.25)

    assert registry.get_sample_value("calls_total", {"method": "tools/call", "outcome": "ok"}) == 2.0
    assert registry.get_sample_value("calls_total", {"method": "tools/call", "outcome": "error"}) == 0.0
    assert registry.get_sample_value("seconds_count", {"route": "/mcp"}) == 1.0
    assert registry.get_sample_value("seconds_sum", {"route": "/mcp"}) == 0.25
