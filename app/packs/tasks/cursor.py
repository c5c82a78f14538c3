"""Opaque list cursors a client cannot forge or carry into another listing.

A cursor is ``base64url(position) "." base64url(mac)``: ``position`` is the order key of the last task
examined (keyset pagination), ``mac`` an HMAC-SHA256 over the position *and* the listing it belongs
to (caller's principal id, the owner listed, the filters). Reusing a cursor as another principal,
for another owner or with other filters fails verification, as does any edit. The data read is
always the caller's own (or, for an admin, the named owner's) regardless: the MAC just makes a bad
cursor an explicit VALIDATION_ERROR instead of a silent jump.

Keys: derived from ``MCPS_REQUEST_STATE_KEYS`` when set (the first signs, all verify, so rotation
works as it does for requestState); else a secret the store shares across replicas.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence

from app.packs.tasks.models import ORDER_KEY_PATTERN

_CONTEXT = b"mcp-service/tasks/list-cursor/v1"
_MAC_BYTES = 16
MAX_CURSOR_CHARS = 256


class InvalidCursor(ValueError):
    """The cursor was not issued for this listing (edited, foreign, or from another deployment)."""


def derive_key(secret: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one cursor key is needed")
        self._keys = [derive_key(key) for key in keys]

    @staticmethod
    def _message(position: str, binding: Sequence[object]) -> bytes:
        return json.dumps([position, *binding], separators=(",", ":"), sort_keys=True).encode()

    def _mac(self, key: bytes, position: str, binding: Sequence[object]) -> bytes:
        return hmac.new(key, self._message(position, binding), hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, position: str, binding: Sequence[object]) -> str:
        return f"{_b64(position.encode())}.{_b64(self._mac(self._keys[0], position, binding))}"

    def decode(self, cursor: str, binding: Sequence[object]) -> str:
        """The position inside ``cursor`` if it was issued for ``binding``; else `InvalidCursor`."""
        head, dot, tail = cursor.partition(".")
        if not dot or len(cursor) > MAX_CURSOR_CHARS:
            raise InvalidCursor("malformed cursor")
        try:
            position = _unb64(head).decode("ascii")
            mac = _unb64(tail)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidCursor("malformed cursor") from None
        valid = False
        for key in self._keys:  # no early exit: every key is tried
            valid |= hmac.compare_digest(mac, self._mac(key, position, binding))
        if not valid or ORDER_KEY_PATTERN.fullmatch(position) is None:
            raise InvalidCursor("cursor was not issued for this listing")
        return position
