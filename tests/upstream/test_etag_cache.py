"""The ETag cache's bounds and keys."""

from __future__ import annotations

import pytest

from app.upstream.etag_cache import CachedResponse, EtagCache, cache_key, storable_headers


def entry(size: int, etag: str = '"e"') -> CachedResponse:
    return CachedResponse(etag, 200, (), b"x" * size, "utf-8")


def test_least_recently_used_goes_first() -> None:
    cache = EtagCache(max_entries=2)
    cache.put("a", entry(1))
    cache.put("b", entry(1))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", entry(1))
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None


def test_total_bytes_bound() -> None:
    cache = EtagCache(max_entries=100, max_entry_bytes=10, max_bytes=25)
    for name in "abc":
        assert cache.put(name, entry(10))
    assert len(cache) == 2
    assert cache.total_bytes == 20
    assert cache.get("a") is None


def test_too_big_is_not_kept_and_drops_the_old_version() -> None:
    cache = EtagCache(max_entry_bytes=10, max_bytes=100)
    cache.put("a", entry(5, '"v1"'))
    assert not cache.put("a", entry(11, '"v2"'))
    assert cache.get("a") is None
    assert cache.total_bytes == 0


def test_replacing_an_entry_keeps_the_byte_count() -> None:
    cache = EtagCache()
    cache.put("a", entry(5))
    cache.put("a", entry(7))
    assert cache.total_bytes == 7
    cache.clear()
    assert len(cache) == 0
    assert cache.total_bytes == 0


def test_keys_separate_what_varies_and_hide_credentials() -> None:
    base = cache_key("get", "http://x/a")
    assert base == cache_key("GET", "http://x/a")
    assert base != cache_key("GET", "http://x/a", vary="alice")
    assert base != cache_key("GET", "http://x/a", accept="application/vnd.github.raw")
    with_token = cache_key("GET", "http://x/a", credentials="Bearer sekret")
    assert base != with_token
    assert "sekret" not in with_token


def test_cookies_are_never_stored() -> None:
    kept = storable_headers([("content-type", "application/json"), ("Set-Cookie", "s=1"), ("etag", '"e"')])
    assert kept == (("content-type", "application/json"), ("etag", '"e"'))


def test_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        EtagCache(max_entries=0)
