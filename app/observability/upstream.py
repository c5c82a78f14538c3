"""Upstream API attempts and circuit breakers, as metrics and spans.

`UpstreamObserver` is the `app.upstream.AttemptObserver` every `UpstreamClient` should get
(``observer=services.metrics.upstream_observer``): per attempt, a duration sample, a count by
status, and, while tracing, a CLIENT span for the attempt (made after the fact with the
attempt's real start and end times, as a child of whatever span the tool runs in).
`BreakerMetrics` listens to the `BreakerRegistry`: a state gauge and a transitions counter.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode

from app.metrics import Metrics
from app.observability import tracing
from app.observability.children import Children
from app.upstream.breaker import BreakerRegistry, BreakerState

BREAKER_STATES: tuple[BreakerState, ...] = ("closed", "open", "half_open")
KNOWN_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def status_class(outcome: int | str) -> str:
    if isinstance(outcome, int):
        return f"{outcome // 100}xx" if 100 <= outcome < 600 else "other"
    return outcome


class BreakerMetrics:
    def __init__(self, metrics: Metrics, breakers: BreakerRegistry) -> None:
        self.metrics = metrics
        self.breakers = breakers
        self._seen: set[str] = set()
        breakers.on_transition(self.on_transition)

    def seed(self, upstream: str) -> None:
        """Publish a breaker's state the first time its upstream is used (before any transition)."""
        if upstream in self._seen:
            return
        self._seen.add(upstream)
        self._set_state(upstream, self.breakers.get(upstream).state)

    def on_transition(self, upstream: str, old: BreakerState, new: BreakerState) -> None:
        self._seen.add(upstream)
        self.metrics.breaker_transitions.labels(upstream, old, new).inc()
        self._set_state(upstream, new)

    def _set_state(self, upstream: str, current: BreakerState) -> None:
        for state in BREAKER_STATES:
            self.metrics.breaker_state.labels(upstream, state).set(1.0 if state == current else 0.0)


class UpstreamObserver:
    """Called by `UpstreamClient` after every attempt (``outcome``: HTTP status or an error kind)."""

    def __init__(self, metrics: Metrics, breakers: BreakerMetrics | None = None) -> None:
        self.metrics = metrics
        self.breakers = breakers
        self._durations = Children(metrics.upstream_duration)
        self._counts = Children(metrics.upstream_requests)

    def __call__(
        self, upstream: str, method: str, outcome: int | str, duration_seconds: float, attempt: int, /
    ) -> None:
        if self.breakers is not None:
            self.breakers.seed(upstream)
        method_label = method if method in KNOWN_HTTP_METHODS else "_OTHER"
        status = str(outcome)
        self._counts.get(upstream, method_label, status).inc()
        if outcome != "breaker_open":  # nothing was sent: no duration to speak of
            self._durations.get(upstream, method_label, status_class(outcome)).observe(duration_seconds)
        tracer = tracing.active_tracer()
        if tracer is not None:
            _attempt_span(tracer, upstream, method_label, outcome, duration_seconds, attempt)


def _attempt_span(tracer: Any, upstream: str, method: str, outcome: int | str, duration: float, attempt: int) -> None:
    end = time.time_ns()
    start = end - int(duration * 1e9)
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "mcp_service.upstream": upstream,
        "peer.service": upstream,
    }
    if attempt > 1:
        attributes["http.request.resend_count"] = attempt - 1
    failed = False
    if isinstance(outcome, int):
        attributes["http.response.status_code"] = outcome
        if outcome >= 400:
            attributes["error.type"] = str(outcome)
            failed = True  # HTTP client spans: 4xx and 5xx are errors
    else:
        attributes["error.type"] = outcome
        failed = True
    span = tracer.start_span(f"{method} {upstream}", kind=SpanKind.CLIENT, start_time=start, attributes=attributes)
    if failed:
        span.set_status(StatusCode.ERROR)
    span.end(end_time=end)
