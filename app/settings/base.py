"""What every group of settings shares: the ``MCPS_`` prefix, ``.env``, and the value formats people type.

Each group (`app.settings.serving`, `transport`, `auth`, ...) is a `SettingsGroup`, so a module that
needs one concern can be typed against that group alone; `app.settings.Settings` composes them all.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "MCPS_"


class SettingsGroup(BaseSettings):
    """One concern's settings, read from ``MCPS_*`` variables (and ``.env``), like the whole."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )


def split_list(value: Any) -> Any:
    """Accept a JSON array or a comma-separated string for list settings (``a,b`` is what people type)."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]


def http_url(value: str) -> str:
    """An absolute http(s) URL without query or fragment, trailing slash dropped (packs use it too)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL such as https://mcp.example.com/mcp")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    return value.rstrip("/")


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``localhost`` included)."""
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RateTier(BaseModel):
    """A rate-limit tier: a token bucket of ``capacity`` refilled at ``refill_per_second``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    capacity: float = Field(gt=0)
    refill_per_second: float = Field(gt=0)
