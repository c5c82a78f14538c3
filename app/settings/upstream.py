"""Third-party APIs: timeouts, attempts and circuit breakers."""

from __future__ import annotations

from pydantic import Field

from app.settings.base import SettingsGroup


class UpstreamSettings(SettingsGroup):
    """Third-party APIs: timeouts, attempts and circuit breakers."""

    upstream_connect_timeout_seconds: float = Field(3, gt=0, le=60, description="Third-party APIs: connect timeout.")
    upstream_read_timeout_seconds: float = Field(10, gt=0, le=300, description="Third-party APIs: read timeout.")
    upstream_total_timeout_seconds: float = Field(
        15, gt=0, le=600, description="Third-party APIs: bound on a whole call, retries included."
    )
    upstream_max_attempts: int = Field(3, ge=1, le=10, description="Third-party APIs: attempts for idempotent calls.")
    breaker_failure_threshold: int = Field(5, ge=1, description="Circuit breaker: failures within the window to open.")
    breaker_window_seconds: float = Field(30, gt=0, description="Circuit breaker: failure counting window.")
    breaker_open_seconds: float = Field(15, gt=0, description="Circuit breaker: time open before a half-open probe.")
    breaker_half_open_successes: int = Field(2, ge=1, description="Circuit breaker: probe successes needed to close.")
