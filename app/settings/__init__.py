"""Every setting of the service, read from ``MCPS_*`` environment variables and an optional ``.env``.

Split by concern, one group per module (serving, transport, auth, backend, guards, upstream,
observability); `Settings` composes them, so variable names stay flat (``MCPS_RATE_LIMIT_CAPACITY``)
while a module that needs one concern is typed against its group. Checks that span groups live here.
One validated object is built at start-up and handed down explicitly (never read from globals), so
tests can build many apps with different settings in one process. ``docs/configuration.md`` is the
table of these fields, generated per group by scripts/gen_config_doc.py.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError, model_validator

from app.settings.auth import AuthSettings
from app.settings.backend import BackendSettings
from app.settings.base import ENV_PREFIX, RateTier, SettingsGroup, http_url, is_loopback
from app.settings.guards import GuardSettings
from app.settings.longrun import LongRunSettings
from app.settings.observability import ObservabilitySettings
from app.settings.serving import ServingSettings
from app.settings.stdio import StdioSettings
from app.settings.transport import TransportSettings
from app.settings.upstream import UpstreamSettings

__all__ = [
    "ENV_PREFIX",
    "GROUPS",
    "AuthSettings",
    "BackendSettings",
    "GuardSettings",
    "ObservabilitySettings",
    "RateTier",
    "ServingSettings",
    "Settings",
    "SettingsError",
    "SettingsGroup",
    "StdioSettings",
    "TransportSettings",
    "UpstreamSettings",
    "describe_validation_error",
    "http_url",
    "is_loopback",
    "load_settings",
]

LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]

# The groups, in the order the documentation lists them (fields of a subclass come last-base first).
GROUPS: tuple[type[SettingsGroup], ...] = (
    ServingSettings,
    TransportSettings,
    AuthSettings,
    BackendSettings,
    GuardSettings,
    LongRunSettings,
    UpstreamSettings,
    ObservabilitySettings,
    StdioSettings,
)


class Settings(
    StdioSettings,
    ObservabilitySettings,
    UpstreamSettings,
    LongRunSettings,
    GuardSettings,
    BackendSettings,
    AuthSettings,
    TransportSettings,
    ServingSettings,
):
    """The service's configuration: every group. Field docs are the user-facing meaning of each variable."""

    @model_validator(mode="after")
    def _auth_is_coherent(self) -> Settings:
        jwt_sources = [self.jwt_jwks_url, self.jwt_public_key]
        if self.jwt_issuer or any(jwt_sources):
            if not self.jwt_issuer:
                raise ValueError(f"JWT validation needs {ENV_PREFIX}JWT_ISSUER")
            if sum(source is not None for source in jwt_sources) != 1:
                raise ValueError(
                    f"JWT validation needs exactly one of {ENV_PREFIX}JWT_JWKS_URL or {ENV_PREFIX}JWT_PUBLIC_KEY"
                )
            if not self.resource_url:
                raise ValueError(
                    f"JWT validation needs {ENV_PREFIX}PUBLIC_URL (or {ENV_PREFIX}JWT_AUDIENCE): the audience"
                )
        if self.auth_disabled:
            if not is_loopback(self.host) and not self.allow_unauthenticated_public_bind:
                raise ValueError(
                    f"refusing to bind {self.host} (reachable from other machines) with authentication disabled; "
                    f"configure authentication, bind 127.0.0.1, or set "
                    f"{ENV_PREFIX}ALLOW_UNAUTHENTICATED_PUBLIC_BIND=true"
                )
        elif not self.auth_configured:
            raise ValueError(
                f"authentication is on but no credential is configured: set {ENV_PREFIX}API_KEYS (python -m app keys "
                f"new) or {ENV_PREFIX}JWT_ISSUER and friends, or {ENV_PREFIX}AUTH_DISABLED=true for local development"
            )
        return self

    @property
    def resource_url(self) -> str | None:
        """This server's OAuth resource identifier (RFC 8707 / 9728): the JWT audience."""
        return self.jwt_audience or self.public_url

    def effective_allowed_hosts(self) -> list[str]:
        hosts = [*LOOPBACK_HOSTS, *self.allowed_hosts]
        if self.public_url:
            parts = urlsplit(self.public_url)
            hosts += [parts.netloc, f"{parts.hostname}:*"]
        return list(dict.fromkeys(hosts))

    def effective_allowed_origins(self) -> list[str]:
        origins = [*LOOPBACK_ORIGINS, *self.allowed_origins]
        if self.public_url:
            parts = urlsplit(self.public_url)
            origins.append(f"{parts.scheme}://{parts.netloc}")
        return list(dict.fromkeys(origins))


class SettingsError(Exception):
    """A configuration problem, already phrased as one readable line per problem."""


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad variable, naming it and the problem, never echoing the value (it may be a secret)."""
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"] if not isinstance(part, int)]
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(
            f"invalid setting {ENV_PREFIX}{loc[0].upper()}: {message}" if loc else f"invalid settings: {message}"
        )
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (and ``.env``), raising `SettingsError` with readable lines."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
    except json.JSONDecodeError as exc:
        raise SettingsError(f"invalid setting: a list value is not valid JSON ({exc.msg})") from None
