"""Static API keys, configured as hashes so a leaked configuration leaks no key.

Keys are 256-bit random tokens (``mcps_`` + 43 url-safe characters), so a plain SHA-256 is the
right hash: slow password hashes (argon2, bcrypt) defend low-entropy secrets and would only add
latency to every request. A presented key is hashed and compared with every configured digest
using `hmac.compare_digest`, with no early exit, so timing reveals neither which key nor whether
one matched. Several entries may be active at once: rotate by adding the new key, deploying,
then removing the old one.

Configuration entry (``MCPS_API_KEYS``, comma-separated, or a JSON array of such strings)::

    sha256:<64 hex>;principal=<id>;scopes=<scope> <scope>...;expires=<ISO 8601, optional>
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

KEY_PREFIX = "mcps_"
_HASH = re.compile(r"^sha256:([0-9a-f]{64})$")
_PRINCIPAL = re.compile(r"^[A-Za-z0-9._@:-]{1,128}$")
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
        if not _PRINCIPAL.match(principal):
            raise ValueError("an API key entry needs principal=<1-128 of A-Z a-z 0-9 . _ @ : ->")
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


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


class ApiKeyVerifier:
    def __init__(self, entries: list[ApiKeyEntry]) -> None:
        self._entries = tuple(entries)

    def verify(self, key: str, *, now: datetime | None = None) -> ApiKeyEntry | None:
        presented = digest(key)
        found: ApiKeyEntry | None = None
        for entry in self._entries:  # no early exit: constant work whatever matches
            if hmac.compare_digest(presented, entry.digest) and found is None:
                found = entry
        if found is None:
            return None
        if found.expires_at is not None and found.expires_at <= (now or datetime.now(UTC)):
            return None
        return found
