"""Redis operations as metrics, and as the operation name on the Redis command spans.

Every Redis store goes through `RedisConnection.run(op, call)` (one round trip: a Lua script, a
read, a pipeline, a ping). Wrapping that one method of the app's connection (the instance, not
the class: other apps in the process are untouched) times each operation and counts failures by
error class; while tracing is on it also names the operation for the command spans that
opentelemetry-instrumentation-redis makes (`app.observability.tracing`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from app.backends import BackendUnavailable, RedisBackend
from app.metrics import Metrics
from app.observability import tracing

T = TypeVar("T")

BACKEND = "redis"


def instrument_redis(backend: RedisBackend, metrics: Metrics) -> None:
    connection = backend.connection
    original = connection.run
    durations: dict[str, Any] = {}
    errors: dict[tuple[str, str], Any] = {}

    async def run(op: str, call: Callable[[Any], Awaitable[T]]) -> T:
        token = tracing.backend_operation.set(op) if tracing.redis_commands_traced() else None
        started = time.perf_counter()
        try:
            return await original(op, call)
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, BackendUnavailable) and exc.__cause__ is not None else exc
            key = (op, type(cause).__name__)
            counter = errors.get(key)
            if counter is None:
                counter = errors[key] = metrics.backend_errors.labels(BACKEND, *key)
            counter.inc()
            raise
        finally:
            histogram = durations.get(op)
            if histogram is None:
                histogram = durations[op] = metrics.backend_duration.labels(BACKEND, op)
            histogram.observe(time.perf_counter() - started)
            if token is not None:
                tracing.backend_operation.reset(token)

    setattr(connection, "run", run)  # noqa: B010 -- on this instance only
