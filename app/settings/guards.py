"""The guard chain's limits: rate-limit buckets and tiers, idempotency keys, tool timeouts, listen-stream caps."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.settings.base import RateTier, SettingsGroup


class GuardSettings(SettingsGroup):
    """The guard chain's limits: rate-limit buckets and tiers, idempotency keys, tool timeouts, listen-stream caps."""

    # Sized in docs/configuration.md, "Rate limits": a busy agent fits the default, a shared key a tier.
    rate_limit_capacity: float = Field(120, gt=0, description="Default tier: bucket size (burst), in tokens.")
    rate_limit_refill_per_second: float = Field(2.0, gt=0, description="Default tier: tokens added per second.")
    rate_limit_tiers: dict[str, RateTier] = Field(
        default_factory=lambda: {"team": RateTier(capacity=600, refill_per_second=10)},
        description="Tiers besides the default, as JSON (the default has a team tier, for a key several agents "
        "share). A principal with scope tier:<name> gets that tier; setting this replaces the whole map.",
    )
    rate_limit_per_tool: bool = Field(False, description="One bucket per principal and tool instead of per principal.")
    rate_limit_fallback: Literal["local", "allow", "deny"] = Field(
        "local",
        description="While Redis is unreachable: local (a bucket in this process sized for one replica), "
        "allow, or deny.",
    )
    rate_limit_lease_max: int = Field(
        64,
        ge=0,
        le=10_000,
        description="Redis: tokens a replica may take ahead for a busy principal (only from the top half of its "
        "bucket; spent locally within 0.5 s, else dropped). Fewer Redis round trips; 0 = every call decided in Redis.",
    )
    rate_limit_replicas: int = Field(
        1, ge=1, le=10_000, description="Replica count: the local fallback bucket gets 1/replicas of the tier."
    )
    idempotency_ttl_seconds: float = Field(86_400, gt=0, description="How long an idempotency key's result is kept.")
    idempotency_lock_seconds: float = Field(
        120, gt=0, description="An idempotent write still running after this is presumed dead (its key frees up)."
    )
    idempotency_wait_seconds: float = Field(
        2.0, ge=0, le=60, description="A retry arriving while the first call runs waits this long before CONFLICT."
    )
    tool_timeout_seconds: float = Field(30, gt=0, le=3600, description="Default tool timeout (a policy may override).")
    max_listen_streams_per_principal: int = Field(
        8,
        ge=1,
        le=1024,
        description="Open subscriptions/listen streams one principal may hold in this process (RATE_LIMITED past it).",
    )
    max_listen_streams: int = Field(
        1000,
        ge=1,
        le=1024,
        description="Open subscriptions/listen streams in this process, all principals together (UNAVAILABLE "
        "past it); at most the SDK's own 1,024 so this structured refusal comes first.",
    )
