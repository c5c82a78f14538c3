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
import secrets
from datetime import UTC, datetime

from app.credentials import ApiKeyEntry

KEY_PREFIX = "mcps_"

__all__ = ["KEY_PREFIX", "ApiKeyEntry", "ApiKeyVerifier", "digest", "looks_like_api_key", "new_key"]


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
