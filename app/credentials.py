"""What credentials look like: API key entries, the JWT algorithms accepted, principal ids.

Pure formats, below both the settings (which validate them at start-up) and the verifiers in
`app.auth` (which use them per request), so neither depends on the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

# Asymmetric only: a symmetric algorithm would let anyone holding the verification key mint tokens.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

# JWT principals are ``jwt:<issuer host>:<sub>``; API-key principal ids may not start so, which keeps the two
# namespaces apart while every API-key principal id that was valid before stays what it was.
JWT_PRINCIPAL_PREFIX = "jwt:"


def jwt_principal_id(issuer: str, subject: str) -> str:
    """``jwt:<issuer host[:port]>:<sub>``, e.g. ``jwt:idp.example.com:alice``.

    The host, not the whole issuer URL: ids stay short and usable where a principal id is typed
    (an admin's ``owner=``), and one deployment trusts one issuer. The rule for moving to another
    issuer on the same host (its subjects meet the old ones) is in docs/security.md.
    """
    parts = urlsplit(issuer)
    try:
        port = parts.port
    except ValueError:  # not a port: the issuer is compared verbatim elsewhere, so keep it whole here
        port = None
    host = parts.hostname or issuer
    where = f"{host}:{port}" if port is not None else host
    return f"{JWT_PRINCIPAL_PREFIX}{where}:{subject}"


_HASH = re.compile(r"^sha256:([0-9a-f]{64})$")
PRINCIPAL_ID = re.compile(r"^[A-Za-z0-9._@:-]{1,128}$")  # what an API-key (or stdio) principal id may be
_SCOPE = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ApiKeyEntry:
    digest: bytes
    principal: str
    scopes: frozenset[str]
    expires_at: datetime | None = None

    @classmethod
    def parse(cls, text: str) -> ApiKeyEntry:
        """Parse one configuration entry; errors never echo the hash (it identifies a key)."""
        parts = [part.strip() for part in text.strip().split(";")]
        match = _HASH.match(parts[0].lower())
        if match is None:
            raise ValueError("an API key entry must start with sha256:<64 hex digits>")
        fields: dict[str, str] = {}
        for part in parts[1:]:
            name, sep, value = part.partition("=")
            if not sep or name not in ("principal", "scopes", "expires") or name in fields:
                raise ValueError("API key entry fields are principal=, scopes= and expires= (each once)")
            fields[name] = value.strip()
        principal = fields.get("principal", "")
        if not PRINCIPAL_ID.match(principal):
            raise ValueError("an API key entry needs principal=<1-128 of A-Z a-z 0-9 . _ @ : ->")
        if principal.lower().startswith(JWT_PRINCIPAL_PREFIX):
            raise ValueError(f"an API key principal may not start with {JWT_PRINCIPAL_PREFIX} (JWT subjects do)")
        scopes = frozenset(fields.get("scopes", "").split())
        bad = sorted(scope for scope in scopes if not _SCOPE.match(scope))
        if bad:
            raise ValueError(f"invalid scope name(s) in an API key entry: {', '.join(bad)[:200]}")
        expires_at = None
        if fields.get("expires"):
            try:
                expires_at = datetime.fromisoformat(fields["expires"])
            except ValueError:
                raise ValueError("expires= must be an ISO 8601 date or datetime") from None
            if expires_at.tzinfo is None:
                expires_at = expires_at.replace(tzinfo=UTC)
        return cls(bytes.fromhex(match.group(1)), principal, scopes, expires_at)

    def config_line(self) -> str:
        line = f"sha256:{self.digest.hex()};principal={self.principal};scopes={' '.join(sorted(self.scopes))}"
        if self.expires_at is not None:
            line += f";expires={self.expires_at.isoformat()}"
        return line
