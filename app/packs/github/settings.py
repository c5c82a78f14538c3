"""The github pack's settings (``MCPS_GITHUB_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from app.packs.api import PackSettings
from app.settings import http_url


class GitHubSettings(PackSettings):
    model_config = SettingsConfigDict(env_prefix="MCPS_GITHUB_")

    api_url: str = Field(
        "https://api.github.com", description="REST API base URL (GitHub Enterprise: https://HOST/api/v3)."
    )
    token: SecretStr | None = Field(
        None, description="The service's own token (callers' tokens are never passed through)."
    )
    max_file_bytes: int = Field(1_000_000, ge=1, le=50_000_000, description="Larger files are described, not returned.")

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)
