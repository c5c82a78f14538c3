"""Redis operations as metrics, and as the operation name on the Redis command spans.

`RedisOperationMetrics` is the `OperationObserver` given to the backend when it is built: the
`RedisConnection` enters it around every operation (one round trip: a Lua script, a read, a
pipeline, a ping, a publish), so it times each one and counts failures by error class; while Redis
commands are traced it also names the operation for the command spans that
opentelemetry-instrumentation-redis makes (`app.observability.tracing`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from app.backends import BackendUnavailable
from app.metrics import Metrics
from app.observability import tracing
from app.observability.children import Children

BACKEND = "redis"


class RedisOperationMetrics:
    """Duration and errors of each Redis operation, labelled by operation."""

    def __init__(self, metrics: Metrics) -> None:
        self._durations = Children(metrics.backend_duration)
        self._errors = Children(metrics.backend_errors)

    @contextmanager
    def operation(self, op: str) -> Iterator[None]:
        token = tracing.backend_operation.set(op) if tracing.redis_commands_traced() else None
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, BackendUnavailable) and exc.__cause__ is not None else exc
            self._errors.get(BACKEND, op, type(cause).__name__).inc()
            raise
        finally:
            self._durations.get(BACKEND, op).observe(time.perf_counter() - started)
            if token is not None:
                tracing.backend_operation.reset(token)
