"""Remembered ``200 + ETag`` bodies, so a repeated GET can be a cheap conditional one.

GitHub answers ``If-None-Match`` with a 304 that costs no rate limit; anything else saves a body
transfer. In-process and bounded (entries and total bytes, least recently used goes first); each
replica warms its own, which is fine for a revalidation cache: a miss is a normal request.

Keys are method + full URL + what makes a representation differ for the same URL: the ``Accept``
header, a hash of per-call credentials, and an optional caller-given ``vary`` (e.g. the principal
when the upstream answers per user). Values are upstream *responses*, never our request headers.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class CachedResponse:
    etag: str
    status: int
    headers: tuple[tuple[str, str], ...]
    content: bytes
    encoding: str


# Response headers never kept: per-connection framing, and cookies (never replayed to anyone).
_DROPPED_HEADERS = frozenset({"set-cookie", "connection", "keep-alive", "transfer-encoding"})


def cache_key(method: str, url: str, *, accept: str = "", credentials: str = "", vary: str | None = None) -> str:
    """The cache key; ``credentials`` (per-call secret header values) only ever enters as a hash."""
    cred = hashlib.sha256(credentials.encode()).hexdigest()[:16] if credentials else ""
    return "\x1f".join((method.upper(), url, accept, cred, vary or ""))


def storable_headers(headers: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in headers if k.lower() not in _DROPPED_HEADERS)


class EtagCache:
    def __init__(self, *, max_entries: int = 1024, max_entry_bytes: int = 1_048_576, max_bytes: int = 33_554_432):
        if max_entries < 1 or max_entry_bytes < 0 or max_bytes < max_entry_bytes:
            raise ValueError("need max_entries >= 1 and 0 <= max_entry_bytes <= max_bytes")
        self.max_entries = max_entries
        self.max_entry_bytes = max_entry_bytes
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedResponse] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> CachedResponse | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: CachedResponse) -> bool:
        """Keep ``entry`` (evicting the least recently used); False when it is too big to keep."""
        if len(entry.content) > self.max_entry_bytes:
            self.discard(key)  # a stale smaller version must not be revalidated against a new ETag
            return False
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.content)
            self._entries[key] = entry
            self._bytes += len(entry.content)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted.content)
        return True

    def discard(self, key: str) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old.content)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
