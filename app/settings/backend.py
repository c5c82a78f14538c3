"""The shared state: Redis (or process memory) and the in-process cache in front of it."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from app.settings.base import SettingsGroup


class BackendSettings(SettingsGroup):
    """The shared state: Redis (or process memory) and the in-process cache in front of it."""

    redis_url: SecretStr | None = Field(
        None,
        description="redis://[:password@]host:port/db (or rediss://): the state every replica shares (rate limits, "
        "cache, idempotency, tasks). Unset: in-process memory, correct for one replica only.",
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
