"""Calling third-party HTTP APIs: `UpstreamClient` with retries, a `CircuitBreaker` per upstream,
ETag revalidation and `ServiceError` mapping. Tool packs use this, never a bare HTTP client.
"""

from app.upstream.breaker import BreakerRegistry, BreakerState, CircuitBreaker, Permit
from app.upstream.client import IDEMPOTENT_METHODS, AttemptObserver, UpstreamClient, UpstreamResponse
from app.upstream.etag_cache import CachedResponse, EtagCache

__all__ = [
    "IDEMPOTENT_METHODS",
    "AttemptObserver",
    "BreakerRegistry",
    "BreakerState",
    "CachedResponse",
    "CircuitBreaker",
    "EtagCache",
    "Permit",
    "UpstreamClient",
    "UpstreamResponse",
]
