"""What a failed upstream call means to *our* caller, as a `ServiceError`.

The caller of a tool did not talk to GitHub; we did. So the mapping speaks from the service's side:
a 401 from the upstream is our credentials being refused (not the caller's fault, not retryable),
a 5xx or a dead socket is the upstream being unavailable (retryable), a rate limit carries how long
to wait. Messages are built from our own words plus, for a 4xx, the upstream's short explanation
with anything credential-like scrubbed out; never a URL (query strings carry API keys), never a header.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from app.errors import ErrorCode, ServiceError
from app.log import redact

# A rate-limit reset further away than this is an upstream bug or clock skew; don't echo it.
MAX_RETRY_AFTER_SECONDS = 3600.0
MAX_UPSTREAM_MESSAGE_CHARS = 200

# Request headers whose values are credentials: scrubbed from any upstream text we pass on.
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-auth-token", "private-token", "cookie"}
)
_AUTH_SCHEMES = frozenset({"bearer", "token", "basic", "digest"})
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


def secret_values(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The credential strings in ``headers`` (the whole value and the token after its scheme)."""
    found: list[str] = []
    for name, value in headers:
        if name.lower() not in SENSITIVE_HEADERS or not value.strip():
            continue
        found.append(value.strip())
        found.extend(p for p in value.split() if p.lower() not in _AUTH_SCHEMES and len(p) >= 4)
    return sorted(set(found), key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without our credentials, other credential-looking strings, or control characters."""
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    return _CONTROL_CHARS.sub(" ", redact(text)).strip()


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait per ``Retry-After`` (delta or HTTP date), else GitHub's ``x-ratelimit-reset``.

    Clamped to ``[0, MAX_RETRY_AFTER_SECONDS]``; None when the upstream said nothing usable.
    """
    now = time.time() if now is None else now
    seconds: float | None = None
    raw = headers.get("retry-after")
    if raw:
        raw = raw.strip()
        try:
            seconds = float(raw)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(raw).timestamp() - now
            except (TypeError, ValueError, OverflowError):
                seconds = None
        if seconds is not None and not math.isfinite(seconds):
            seconds = None
    if seconds is None and headers.get("x-ratelimit-remaining", "").strip() == "0":
        reset = headers.get("x-ratelimit-reset", "").strip()
        try:
            seconds = float(reset) - now
        except ValueError:
            seconds = None
        if seconds is not None and not math.isfinite(seconds):
            seconds = None
    if seconds is None:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def is_rate_limited(status: int, headers: Mapping[str, str]) -> bool:
    """429, or GitHub's 403 flavours: primary (``x-ratelimit-remaining: 0``) and secondary (``Retry-After``)."""
    if status == 429:
        return True
    return status == 403 and (headers.get("x-ratelimit-remaining", "").strip() == "0" or "retry-after" in headers)


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else math.ceil(seconds * 1000)


def upstream_message(content: bytes, secrets: Iterable[str] = ()) -> str | None:
    """The short human explanation in an upstream's JSON error body, if it has one.

    Covers GitHub (``message``), Open-Meteo (``reason``) and the usual suspects.
    """
    if not content or len(content) > 64_000:
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    for key in ("message", "reason", "error_description", "detail", "error", "title"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            text = scrub(value, secrets)
            if len(text) > MAX_UPSTREAM_MESSAGE_CHARS:
                text = text[: MAX_UPSTREAM_MESSAGE_CHARS - 1] + "…"
            return text
    return None


def from_status(
    upstream: str,
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    secrets: Iterable[str] = (),
    now: float | None = None,
) -> ServiceError:
    """The error for a final upstream answer with status >= 400."""
    details: dict[str, Any] = {"upstream": upstream, "status": status}
    if is_rate_limited(status, headers):
        wait = retry_after_seconds(headers, now=now)
        return ServiceError(
            ErrorCode.RATE_LIMITED,
            f"{upstream} is rate limiting this service",
            retry_after_ms=_ms(wait),
            details=details,
        )
    if status == 404:
        return ServiceError(ErrorCode.NOT_FOUND, f"{upstream}: resource not found", details=details)
    if status in (401, 403):
        return ServiceError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"{upstream} refused this service's credentials (HTTP {status}); "
            "this is a service configuration problem, not the caller's",
            retryable=False,
            details=details,
        )
    if status >= 500:
        wait = retry_after_seconds(headers, now=now) if "retry-after" in headers else None
        return ServiceError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"{upstream} is unavailable (HTTP {status})",
            retry_after_ms=_ms(wait),
            details=details,
        )
    reason = upstream_message(content, secrets)
    message = f"{upstream} rejected the request (HTTP {status})"
    if reason:
        message += f": {reason}"
    return ServiceError(ErrorCode.VALIDATION_ERROR, message, details=details)


def timeout(upstream: str, seconds: float) -> ServiceError:
    return ServiceError(
        ErrorCode.TIMEOUT,
        f"{upstream} did not answer within {seconds:g} s",
        details={"upstream": upstream},
    )


def unreachable(upstream: str, kind: str) -> ServiceError:
    """Connection refused, reset, protocol garbage: ``kind`` is our label, never the exception text."""
    return ServiceError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"{upstream} is unreachable ({kind.replace('_', ' ')})",
        details={"upstream": upstream, "error": kind},
    )


def too_large(upstream: str, limit: int) -> ServiceError:
    return ServiceError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"{upstream} sent a response larger than {limit} bytes",
        retryable=False,
        details={"upstream": upstream, "error": "response_too_large"},
    )


def malformed_json(upstream: str) -> ServiceError:
    return ServiceError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"{upstream} sent a body that is not valid JSON",
        details={"upstream": upstream, "error": "malformed_json"},
    )


def unexpected_shape(upstream: str, what: str = "an answer") -> ServiceError:
    """Valid JSON that is not what the API documents (not retried: the same call gets the same answer)."""
    return ServiceError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"{upstream} sent {what} in an unexpected shape",
        retryable=False,
        details={"upstream": upstream, "error": "unexpected_response"},
    )


def breaker_open(upstream: str, state: str, retry_in_seconds: float) -> ServiceError:
    return ServiceError(
        ErrorCode.UPSTREAM_UNAVAILABLE,
        f"{upstream} is failing; calls are paused for a moment (circuit breaker {state.replace('_', '-')})",
        retryable=True,
        retry_after_ms=_ms(retry_in_seconds),
        details={"upstream": upstream, "breaker": state},
    )
