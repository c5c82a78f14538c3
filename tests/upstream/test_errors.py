"""How upstream answers become `ServiceError`s: pure functions, no network."""

from __future__ import annotations

from email.utils import formatdate

import httpx2
import pytest

from app.errors import ErrorCode
from app.upstream import errors

NOW = 1_800_000_000.0


def headers(**values: str) -> httpx2.Headers:
    return httpx2.Headers({k.replace("_", "-"): v for k, v in values.items()})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (headers(retry_after="7"), 7.0),
        (headers(retry_after="1.5"), 1.5),
        (headers(retry_after=formatdate(NOW + 30, usegmt=True)), 30.0),
        (headers(retry_after=formatdate(NOW - 30, usegmt=True)), 0.0),  # in the past: go now
        (headers(retry_after="999999"), errors.MAX_RETRY_AFTER_SECONDS),  # clamped
        (headers(retry_after="-5"), 0.0),
        (headers(retry_after="soon"), None),
        (headers(retry_after="nan"), None),
        (headers(x_ratelimit_remaining="0", x_ratelimit_reset=str(int(NOW) + 60)), 60.0),
        (headers(x_ratelimit_remaining="12", x_ratelimit_reset=str(int(NOW) + 60)), None),  # not exhausted
        (headers(retry_after="3", x_ratelimit_remaining="0", x_ratelimit_reset=str(int(NOW) + 60)), 3.0),
        (headers(), None),
    ],
)
def test_retry_after_seconds(given: httpx2.Headers, expected: float | None) -> None:
    assert errors.retry_after_seconds(given, now=NOW) == expected


@pytest.mark.parametrize(
    ("status", "given", "code", "retryable"),
    [
        (429, headers(), ErrorCode.RATE_LIMITED, True),
        (403, headers(x_ratelimit_remaining="0"), ErrorCode.RATE_LIMITED, True),
        (403, headers(retry_after="60"), ErrorCode.RATE_LIMITED, True),  # GitHub's secondary rate limit
        (403, headers(), ErrorCode.UPSTREAM_UNAVAILABLE, False),
        (401, headers(), ErrorCode.UPSTREAM_UNAVAILABLE, False),
        (404, headers(), ErrorCode.NOT_FOUND, False),
        (400, headers(), ErrorCode.VALIDATION_ERROR, False),
        (422, headers(), ErrorCode.VALIDATION_ERROR, False),
        (500, headers(), ErrorCode.UPSTREAM_UNAVAILABLE, True),
        (503, headers(), ErrorCode.UPSTREAM_UNAVAILABLE, True),
    ],
)
def test_status_mapping(status: int, given: httpx2.Headers, code: ErrorCode, retryable: bool) -> None:
    error = errors.from_status("github", status, given, b"", now=NOW)
    assert error.error_code is code
    assert error.retryable is retryable
    assert error.details == {"upstream": "github", "status": status}


def test_credentials_refused_is_the_service_not_the_caller() -> None:
    error = errors.from_status("github", 401, headers(), b'{"message": "Bad credentials"}')
    assert "credentials" in error.text
    assert "not the caller" in error.text


def test_rate_limit_carries_the_wait() -> None:
    error = errors.from_status("github", 429, headers(retry_after="2.2"), b"", now=NOW)
    assert error.retry_after_ms == 2200
    assert "retry after 2.2 s" in error.summary()


def test_5xx_passes_a_retry_after_on() -> None:
    assert errors.from_status("x", 503, headers(retry_after="30"), b"", now=NOW).retry_after_ms == 30_000
    assert errors.from_status("x", 503, headers(), b"", now=NOW).retry_after_ms is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"message": "Validation Failed"}', "Validation Failed"),  # GitHub
        (b'{"error": true, "reason": "Latitude must be in range of -90 to 90\\u00b0."}', "Latitude must be"),
        (b'{"detail": "nope"}', "nope"),
        (b"<html>bad gateway</html>", None),
        (b'["not", "an", "object"]', None),
        (b'{"message": ""}', None),
    ],
)
def test_upstream_message(body: bytes, expected: str | None) -> None:
    found = errors.upstream_message(body)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(expected)


def test_upstream_message_is_truncated_and_single_line() -> None:
    text = errors.upstream_message(b'{"message": "line one\\nline two ' + b"x" * 500 + b'"}')
    assert text is not None
    assert len(text) == errors.MAX_UPSTREAM_MESSAGE_CHARS
    assert "\n" not in text
    assert text.endswith("…")


def test_credentials_are_scrubbed_from_upstream_text() -> None:
    secrets = errors.secret_values([("Authorization", "token ghp_abcdef123456"), ("accept", "application/json")])
    assert secrets == ["token ghp_abcdef123456", "ghp_abcdef123456"]
    body = b'{"message": "token ghp_abcdef123456 rejected; also ghp_abcdef123456 and Bearer other.secret"}'
    text = errors.upstream_message(body, secrets)
    assert text is not None
    assert "ghp_abcdef123456" not in text
    assert "other.secret" not in text


def test_breaker_open_error() -> None:
    error = errors.breaker_open("github", "open", 4.2)
    assert error.error_code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert error.retryable
    assert error.retry_after_ms == 4200
    assert error.details == {"upstream": "github", "breaker": "open"}
