"""Who may call: API keys, JWTs (JWKS or a static key), required scopes, the metrics token."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from app.credentials import ASYMMETRIC_ALGORITHMS, ApiKeyEntry
from app.settings.base import CommaList, SettingsGroup, http_url, split_list


class AuthSettings(SettingsGroup):
    """Who may call: API keys, JWTs (JWKS or a static key), required scopes, the metrics token."""

    auth_disabled: bool = Field(
        False,
        description="Turn authentication off (every caller is an anonymous admin). Accepted only on a loopback "
        "bind, unless MCPS_ALLOW_UNAUTHENTICATED_PUBLIC_BIND is also set.",
    )
    allow_unauthenticated_public_bind: bool = Field(
        False,
        description="The I-know flag: allow binding a non-loopback address with authentication disabled.",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Hashed API keys, comma-separated (or a JSON array): sha256:<hex>;principal=<id>;scopes=<a b>"
        "[;expires=<ISO 8601>]. Mint one with: python -m app keys new --principal NAME --scopes ...",
    )
    jwt_issuer: str | None = Field(None, description="JWT access tokens: the required iss (your identity provider).")
    jwt_audience: str | None = Field(
        None, description="JWT access tokens: the required aud. Default: MCPS_PUBLIC_URL (RFC 8707 resource)."
    )
    jwt_jwks_url: str | None = Field(None, description="JWT access tokens: the identity provider's JWKS URL.")
    jwt_public_key: SecretStr | None = Field(
        None, description="JWT access tokens: a static PEM public key instead of a JWKS URL."
    )
    jwt_algorithms: CommaList = Field(
        default_factory=lambda: ["RS256", "ES256", "PS256", "EdDSA"],
        description="Accepted JWT signature algorithms (asymmetric only; none and HS* are refused).",
    )
    jwt_leeway_seconds: float = Field(30, ge=0, le=300, description="Clock skew allowed on exp and nbf.")
    jwks_cache_seconds: float = Field(600, ge=10, le=86_400, description="How long fetched JWKS keys are trusted.")
    jwks_min_refresh_seconds: float = Field(
        30, ge=1, le=3600, description="Unknown kid triggers a JWKS refetch at most this often."
    )
    jwks_timeout_seconds: float = Field(3, gt=0, le=30, description="Timeout of a JWKS fetch.")
    auth_required_scopes: CommaList = Field(
        default_factory=list,
        description="Scopes every caller must hold to use /mcp at all (403 insufficient_scope otherwise).",
    )
    metrics_token: SecretStr | None = Field(
        None, description="When set, /metrics requires Authorization: Bearer <this token>."
    )

    @field_validator("jwt_algorithms", "auth_required_scopes", "api_keys", mode="before")
    @classmethod
    def _auth_lists(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for index, entry in enumerate(value):
            try:
                ApiKeyEntry.parse(entry.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"entry {index + 1}: {exc}") from None
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        unsafe = sorted(set(value) - ASYMMETRIC_ALGORITHMS)
        if unsafe:
            raise ValueError(f"only asymmetric algorithms are accepted, not {', '.join(unsafe)[:100]}")
        if not value:
            raise ValueError("at least one algorithm is needed")
        return value

    @field_validator("jwt_jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @property
    def auth_configured(self) -> bool:
        """Whether any credential source (API keys, JWT) is configured."""
        return bool(self.api_keys) or self.jwt_issuer is not None

    def api_key_entries(self) -> list[ApiKeyEntry]:
        return [ApiKeyEntry.parse(key.get_secret_value()) for key in self.api_keys]
