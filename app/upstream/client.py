"""The one way tool packs call third-party HTTP APIs (GitHub, Open-Meteo, ...).

Every call gets the same production manners, so no pack reinvents them badly:

- a total deadline for the whole call (retries and backoff included), and per-attempt connect/read
  timeouts cut down to what is left of it;
- retries only where repeating is harmless: idempotent requests (or ``idempotent=True``) failing
  with a connection error, a timeout, a 502/503/504, or a 429 whose ``Retry-After`` is short;
  exponential backoff with full jitter, honouring a short ``Retry-After``, never sleeping past the
  deadline (the retry hook names each delay; stamina runs the loop);
- the upstream's `CircuitBreaker` in front of every attempt (5xx, timeouts and connection errors
  count against it; 4xx and 429 do not), failing fast while it is open;
- conditional GETs through an optional `EtagCache` (a 304 returns the remembered body);
- outcomes mapped to `ServiceError`s (`app.upstream.errors`), with no URL, header or token in them;
- an `AttemptObserver` hook after every attempt, for metrics and traces.

Retries use *stamina* rather than a hand-rolled loop: it is typed, its retry loop is well tested
(tenacity underneath), it reports every scheduled retry to its own instrumentation hooks
(logging/Prometheus), and ``stamina.set_testing`` turns backoff off process-wide so tests of retry
behaviour run in milliseconds without a test-only parameter on this class.
"""

from __future__ import annotations

import json as jsonlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Any, Protocol
from urllib.request import Request as UrllibRequest

import anyio
import httpx2
import stamina

from app import __version__
from app.upstream import errors
from app.upstream.breaker import CircuitBreaker, Permit
from app.upstream.etag_cache import CachedResponse, EtagCache, cache_key, storable_headers
from app.upstream.redirects import scope_guard

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRYABLE_STATUSES = frozenset({502, 503, 504})
DEFAULT_USER_AGENT = f"mcp-service/{__version__}"  # GitHub rejects requests without one
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024

# A 304 refreshes these on the remembered response (rate-limit counters, dates); framing stays as stored.
_NOT_REFRESHED_ON_304 = frozenset({"content-length", "content-type", "content-encoding", "transfer-encoding"})


class AttemptObserver(Protocol):
    """Told about every attempt: ``outcome`` is the HTTP status or an error kind.

    Error kinds: ``timeout``, ``connect_error``, ``network_error``, ``protocol_error``,
    ``too_large``, ``cancelled``, ``error`` (a bug, re-raised as is), and ``breaker_open``
    (no request was sent; duration 0).
    """

    def __call__(
        self, upstream: str, method: str, outcome: int | str, duration_seconds: float, attempt: int, /
    ) -> None: ...


@dataclass(frozen=True)
class UpstreamResponse:
    """A successful (< 400) upstream answer, fully read.

    ``from_cache``/``not_modified``: the upstream said 304 and this is the remembered body
    (``status`` is then the remembered one, normally 200). A 304 with nothing remembered (the
    caller sent its own ``If-None-Match``) has ``status == 304``, ``not_modified`` and no body.
    """

    upstream: str
    status: int
    headers: httpx2.Headers
    content: bytes
    encoding: str = "utf-8"
    from_cache: bool = False
    not_modified: bool = False
    attempts: int = 1

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding, errors="replace")

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON is the upstream's failure, said as a `ServiceError`."""
        try:
            return jsonlib.loads(self.content)
        except ValueError:
            raise errors.malformed_json(self.upstream) from None


@dataclass(frozen=True)
class _Raw:
    status: int
    headers: httpx2.Headers
    content: bytes
    encoding: str


class _Failure(Exception):
    """An attempt that failed in a way a retry might fix. The only exception stamina ever sees.

    Its repr is what stamina logs, so it holds our labels only: never a URL, header or message.
    """

    def __init__(self, kind: str, attempt: int, raw: _Raw | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.attempt = attempt
        self.raw = raw

    def __repr__(self) -> str:
        status = f", status={self.raw.status}" if self.raw is not None else ""
        return f"UpstreamAttemptFailed(kind={self.kind!r}{status}, attempt={self.attempt})"

    __str__ = __repr__


class _TooLarge(Exception):
    pass


class _RejectAllCookies(DefaultCookiePolicy):
    """One client serves every principal: an upstream cookie must never ride along on someone else's call."""

    def set_ok(self, cookie: Cookie, request: UrllibRequest) -> bool:
        return False

    def return_ok(self, cookie: Cookie, request: UrllibRequest) -> bool:
        return False


@dataclass
class _Call:
    """What one `UpstreamClient.request` needs to remember across its attempts."""

    method: str
    retry_allowed: bool
    deadline: float
    secrets: list[str]
    attempts: int = 0


class UpstreamClient:
    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        total_timeout: float = 15.0,
        max_attempts: int = 3,
        backoff_initial: float = 0.2,
        backoff_max: float = 2.0,
        breaker: CircuitBreaker,
        etag_cache: EtagCache | None = None,
        observer: AttemptObserver | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        if min(connect_timeout, read_timeout, total_timeout) <= 0:
            raise ValueError("timeouts must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.name = name
        self.breaker = breaker
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._total_timeout = total_timeout
        self._max_attempts = max_attempts
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._etags = etag_cache
        self._observer = observer
        self._max_response_bytes = max_response_bytes
        default_headers = httpx2.Headers({"User-Agent": DEFAULT_USER_AGENT})
        default_headers.update(headers or {})
        self._secrets = errors.secret_values(default_headers.multi_items())
        self._client = httpx2.AsyncClient(
            base_url=base_url,
            headers=default_headers,
            timeout=httpx2.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            follow_redirects=True,  # GitHub answers 301 for renamed repositories
            max_redirects=3,
            event_hooks={"request": [scope_guard(base_url)]},  # never off the API: `app.upstream.redirects`
            cookies=CookieJar(policy=_RejectAllCookies()),
            transport=transport,
        )

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        cache_vary: str | None = None,
    ) -> UpstreamResponse:
        """Call ``path`` (relative to the base URL) and return the answer, or raise a `ServiceError`.

        ``idempotent`` overrides the method's default (GET/HEAD/PUT/DELETE/OPTIONS retry, others
        never do). ``cache_vary`` separates cached ETag entries, e.g. per principal when the
        upstream's answer depends on who asks.
        """
        method = method.upper()
        _require_relative(path)
        request = self._client.build_request(method, path, params=params, json=json, headers=headers)
        call = _Call(
            method=method,
            retry_allowed=method in IDEMPOTENT_METHODS if idempotent is None else idempotent,
            deadline=time.monotonic() + self._total_timeout,
            secrets=self._secrets + errors.secret_values((headers or {}).items()),
        )
        key, cached = self._conditional(request, headers, cache_vary)
        raw: _Raw | None = None
        try:
            with anyio.fail_after(self._total_timeout):
                # No wait_* arguments: the hook names every backoff itself (see `_retry_hook`).
                async for attempt in stamina.retry_context(
                    on=self._retry_hook(call),
                    attempts=self._max_attempts,
                    timeout=None,  # the total deadline above bounds retries (and the attempt in flight)
                ):
                    with attempt:
                        call.attempts = attempt.num
                        raw = await self._attempt(request, call)
        except TimeoutError:
            raise errors.timeout(self.name, self._total_timeout) from None
        except _Failure as failure:
            raise self._final_error(failure, call) from None
        assert raw is not None
        return self._answer(raw, call, key, cached)

    # --- one attempt ------------------------------------------------------------------------

    async def _attempt(self, request: httpx2.Request, call: _Call) -> _Raw:
        permit = self.breaker.acquire()
        if permit is None:
            self._observe(call.method, "breaker_open", 0.0, call.attempts)
            raise errors.breaker_open(self.name, self.breaker.state, self.breaker.retry_in_seconds())
        remaining = max(call.deadline - time.monotonic(), 0.001)
        request.extensions["timeout"] = httpx2.Timeout(
            connect=min(self._connect_timeout, remaining),
            read=min(self._read_timeout, remaining),
            write=min(self._read_timeout, remaining),
            pool=min(self._connect_timeout, remaining),
        ).as_dict()
        started = time.perf_counter()
        outcome: int | str = "cancelled"
        failed: bool | None = None  # for the breaker: True a failure, False a success, None says nothing
        try:
            raw = await self._send(request)
        except httpx2.TimeoutException:
            outcome, failed = "timeout", True
            raise _Failure("timeout", call.attempts) from None
        except httpx2.ConnectError:
            outcome, failed = "connect_error", True
            raise _Failure("connect_error", call.attempts) from None
        except (httpx2.NetworkError, httpx2.RemoteProtocolError, httpx2.ProxyError):
            outcome, failed = "network_error", True
            raise _Failure("network_error", call.attempts) from None
        except httpx2.HTTPError:  # too many redirects, one off the API, undecodable body, a request we built wrong
            outcome = "protocol_error"
            raise errors.unreachable(self.name, "protocol_error") from None
        except _TooLarge:
            outcome = "too_large"
            raise errors.too_large(self.name, self._max_response_bytes) from None
        except Exception:
            outcome = "error"
            raise
        except BaseException:  # cancelled: by our total deadline (the upstream is too slow) or by our caller
            if time.monotonic() >= call.deadline:
                outcome, failed = "timeout", True
            raise
        else:
            outcome = raw.status
            if raw.status >= 500:
                failed = True
            elif not errors.is_rate_limited(raw.status, raw.headers):
                failed = False
        finally:
            self._settle(permit, failed)
            self._observe(call.method, outcome, time.perf_counter() - started, call.attempts)
        if raw.status in RETRYABLE_STATUSES or errors.is_rate_limited(raw.status, raw.headers):
            raise _Failure("status", call.attempts, raw)
        return raw

    async def _send(self, request: httpx2.Request) -> _Raw:
        """Send and read the whole body, refusing bodies over the size cap (counted decompressed)."""
        response = await self._client.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_response_bytes:
                raise _TooLarge
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_response_bytes:
                    raise _TooLarge
                chunks.append(chunk)
        finally:
            await response.aclose()
        return _Raw(response.status_code, response.headers, b"".join(chunks), response.encoding or "utf-8")

    def _settle(self, permit: Permit, failed: bool | None) -> None:
        if failed is True:
            self.breaker.record_failure(permit)
        elif failed is False:
            self.breaker.record_success(permit)
        else:
            self.breaker.release(permit)

    def _observe(self, method: str, outcome: int | str, duration: float, attempt: int) -> None:
        if self._observer is None:
            return
        try:
            self._observer(self.name, method, outcome, duration, attempt)
        except Exception:  # instrumentation must never break a call
            log.exception("upstream observer failed")

    # --- retries ----------------------------------------------------------------------------

    def _retry_hook(self, call: _Call) -> Callable[[Exception], bool | float]:
        """stamina's ``on``: False (give up, re-raise) or the backoff in seconds before the next attempt.

        The hook computes the backoff instead of leaving it to stamina's ``wait_*`` parameters
        because the choice depends on what stamina cannot see: a short ``Retry-After`` replaces or
        raises the delay, a long one ends the retries, and a delay that would outlast the call's
        deadline ends them too (the caller gets the upstream's failure, not a timeout). It never
        answers True, so stamina's own backoff never applies; ``stamina.set_testing`` still skips
        the sleep.
        """

        def decide(exc: Exception) -> bool | float:
            if not call.retry_allowed or not isinstance(exc, _Failure):
                return False
            delay = self._full_jitter(exc.attempt)
            if exc.raw is not None:
                wait = errors.retry_after_seconds(exc.raw.headers)
                if errors.is_rate_limited(exc.raw.status, exc.raw.headers):
                    if wait is None or wait > self._backoff_max:
                        return False  # a long rate-limit wait is the caller's to decide, not ours to sit out
                    delay = wait
                elif "retry-after" in exc.raw.headers and wait is not None:
                    if wait > self._backoff_max:
                        return False
                    delay = max(delay, wait)
            if time.monotonic() + delay >= call.deadline:
                return False  # sleeping past the deadline would only turn this failure into a timeout
            return delay

        return decide

    def _full_jitter(self, attempt: int) -> float:
        """AWS-style full jitter: uniform in [0, min(max, initial * 2^(n-1))], so retrying callers spread out."""
        ceiling = min(self._backoff_max, self._backoff_initial * 2 ** (attempt - 1))
        return random.uniform(0.0, ceiling)  # noqa: S311 -- jitter, not cryptography

    def _final_error(self, failure: _Failure, call: _Call) -> Exception:
        if failure.raw is not None:
            raw = failure.raw
            return errors.from_status(self.name, raw.status, raw.headers, raw.content, secrets=call.secrets)
        if failure.kind == "timeout":
            return errors.timeout(self.name, min(self._read_timeout, self._total_timeout))
        return errors.unreachable(self.name, failure.kind)

    # --- conditional requests ---------------------------------------------------------------

    def _conditional(
        self, request: httpx2.Request, headers: Mapping[str, str] | None, vary: str | None
    ) -> tuple[str | None, CachedResponse | None]:
        """For a GET with a cache: the entry's key and, when we hold one, add ``If-None-Match``."""
        if self._etags is None or request.method != "GET":
            return None, None
        if "if-none-match" in request.headers:
            return None, None  # the caller runs its own revalidation
        per_call = httpx2.Headers(headers or {})
        credentials = "\x1f".join(v for k, v in per_call.multi_items() if k.lower() in errors.SENSITIVE_HEADERS)
        key = cache_key(
            "GET", str(request.url), accept=request.headers.get("accept", ""), credentials=credentials, vary=vary
        )
        cached = self._etags.get(key)
        if cached is not None:
            request.headers["If-None-Match"] = cached.etag
        return key, cached

    def _answer(self, raw: _Raw, call: _Call, key: str | None, cached: CachedResponse | None) -> UpstreamResponse:
        if raw.status == 304:
            if cached is None:
                return UpstreamResponse(
                    self.name, 304, raw.headers, b"", raw.encoding, not_modified=True, attempts=call.attempts
                )
            headers = httpx2.Headers(list(cached.headers))
            for name, value in raw.headers.items():
                if name.lower() not in _NOT_REFRESHED_ON_304:
                    headers[name] = value
            return UpstreamResponse(
                self.name,
                cached.status,
                headers,
                cached.content,
                cached.encoding,
                from_cache=True,
                not_modified=True,
                attempts=call.attempts,
            )
        if raw.status >= 400:
            raise errors.from_status(self.name, raw.status, raw.headers, raw.content, secrets=call.secrets)
        if key is not None and self._etags is not None:
            self._remember(key, raw)
        return UpstreamResponse(self.name, raw.status, raw.headers, raw.content, raw.encoding, attempts=call.attempts)

    def _remember(self, key: str, raw: _Raw) -> None:
        assert self._etags is not None
        etag = raw.headers.get("etag")
        no_store = "no-store" in raw.headers.get("cache-control", "").lower()
        if raw.status != 200 or not etag or no_store:
            self._etags.discard(key)
            return
        entry = CachedResponse(etag, raw.status, storable_headers(raw.headers.multi_items()), raw.content, raw.encoding)
        self._etags.put(key, entry)


def _require_relative(path: str) -> None:
    """Refuse absolute URLs: our credentials must only ever go to the configured base URL."""
    url = httpx2.URL(path)
    if url.scheme or url.host or path.startswith("//"):
        raise ValueError("path must be relative to the upstream's base_url")
