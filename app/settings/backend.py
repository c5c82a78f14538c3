"""The shared state: Redis (or process memory) and the in-process cache in front of it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from app.settings.base import SettingsGroup


class BackendSettings(SettingsGroup):
    """The shared state: Redis (or process memory) and the in-process cache in front of it."""

    redis_url: SecretStr | None = Field(
        None,
        description="redis://[user:password@]host:port/db (rediss:// for TLS): the state every replica shares "
        "(rate limits, cache, idempotency, tasks). Unset: in-process memory, correct for one replica only. "
        "In cluster mode: any node of the cluster (or its configuration endpoint), db 0.",
    )
    redis_mode: Literal["single", "cluster"] = Field(
        "single",
        description="single: one Redis (or a managed primary endpoint). cluster: a Redis Cluster (the client "
        "discovers the nodes from the URL's and follows redirects; keys are hash-tagged so each script "
        "runs in one slot; events use sharded pub/sub).",
    )
    redis_key_prefix: str = Field("mcps:", min_length=1, max_length=64, description="Prefix of every Redis key.")
    redis_timeout_seconds: float = Field(
        0.25, gt=0, le=10, description="Socket and connect timeout of Redis calls: an outage costs at most this."
    )
    cache_l1_ttl_seconds: float = Field(
        1.0, ge=0, le=60, description="In-process cache in front of Redis: entry lifetime (0 disables the L1)."
    )
    cache_l1_max_entries: int = Field(10_000, ge=1, description="In-process cache in front of Redis: size bound.")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _cluster_constraints(self) -> BackendSettings:
        if self.redis_mode != "cluster":
            return self
        if self.redis_url is not None and self.redis_url.get_secret_value().startswith("unix://"):
            raise ValueError("MCPS_REDIS_MODE=cluster needs a redis:// or rediss:// URL (a node's address)")
        if "{" in self.redis_key_prefix or "}" in self.redis_key_prefix:
            raise ValueError("MCPS_REDIS_KEY_PREFIX must not contain '{' or '}' in cluster mode (hash tags)")
        return self
