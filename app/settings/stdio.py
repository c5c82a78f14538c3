"""The local stdio server (``python -m app stdio``): who the one local client acts as.

stdio carries no bearer token: the process is started by the client's own user, so the identity is
configured here instead. The default is a non-admin principal with the default packs' scopes; the
reasoning is in docs/security.md ("Local stdio server").
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from app.credentials import JWT_PRINCIPAL_PREFIX, PRINCIPAL_ID
from app.settings.base import SettingsGroup

_SCOPE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_STDIO_SCOPES = 64


class StdioSettings(SettingsGroup):
    """The local stdio server (python -m app stdio): the principal and scopes its one client acts with."""

    stdio_principal: str = Field(
        "local",
        description="Principal id of the local stdio client (its tasks are stored under it). The HTTP "
        "credentials (API keys, JWTs) play no part on stdio.",
    )
    stdio_scopes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["tasks:read", "tasks:write", "system:read"],
        description="Scopes of the local stdio client, separated by spaces or commas. Not admin by default: add "
        "admin only for a single-user store (admins read every principal's tasks).",
    )

    @field_validator("stdio_principal")
    @classmethod
    def _principal(cls, value: str) -> str:
        if not PRINCIPAL_ID.match(value):
            raise ValueError("a principal id is 1-128 of A-Z a-z 0-9 . _ @ : -")
        if value.lower().startswith(JWT_PRINCIPAL_PREFIX):
            raise ValueError(f"the stdio principal may not start with {JWT_PRINCIPAL_PREFIX} (JWT subjects do)")
        return value

    @field_validator("stdio_scopes", mode="before")
    @classmethod
    def _scopes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in re.split(r"[\s,]+", value) if part]
        return value

    @field_validator("stdio_scopes")
    @classmethod
    def _scope_names(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_STDIO_SCOPES:
            raise ValueError(f"at most {MAX_STDIO_SCOPES} scopes")
        bad = [scope for scope in value if not _SCOPE.match(scope)]
        if bad:
            raise ValueError("a scope is 1-64 of A-Z a-z 0-9 _ . : -")
        return list(dict.fromkeys(value))
