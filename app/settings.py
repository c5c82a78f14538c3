"""Every setting of the service, read from ``MCPS_*`` environment variables and an optional ``.env``.

One validated object is built at start-up and handed down explicitly (never read from globals),
so tests can build many apps with different settings in one process. ``docs/configuration.md``
is the table of these fields; keep the two in step.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.auth.api_keys import ApiKeyEntry
from app.auth.jwt_verifier import ASYMMETRIC_ALGORITHMS

ENV_PREFIX = "MCPS_"

LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


def _split_list(value: Any) -> Any:
    """Accept a JSON array or a comma-separated string for list settings (``a,b`` is what people type)."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode]


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``localhost`` included)."""
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RateTier(BaseModel):
    """A rate-limit tier: a token bucket of ``capacity`` refilled at ``refill_per_second``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    capacity: float = Field(gt=0)
    refill_per_second: float = Field(gt=0)


class Settings(BaseSettings):
    """The service's configuration. Field docs are the user-facing meaning of each variable."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- serving -------------------------------------------------------------------------
    host: str = Field(
        "127.0.0.1", description="Address to bind. Non-loopback needs authentication (or the I-know flag)."
    )
    port: int = Field(8000, ge=1, le=65535, description="TCP port to bind.")
    public_url: str | None = Field(
        None,
        description="The URL clients use to reach /mcp (e.g. https://mcp.example.com/mcp). Its host is allowed "
        "by Host/Origin checks and it is the OAuth resource identifier.",
    )
    server_name: str = Field(
        "mcp-service", min_length=1, max_length=100, description="MCP server name (also the request-state audience)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO", description="Root log level.")
    access_log: bool = Field(True, description="One JSON access-log line per HTTP request.")
    access_log_health: bool = Field(False, description="Also log /health/* and /metrics requests (noisy under probes).")
    uvicorn_loop: Literal["auto", "asyncio", "uvloop"] = Field("auto", description="Event loop implementation.")
    uvicorn_http: Literal["auto", "h11", "httptools"] = Field("auto", description="HTTP/1.1 parser implementation.")

    # --- connection limits (per worker process; app/connections.py) ----------------------------
    max_connections: int = Field(
        1000,
        ge=1,
        description="Open connections (or requests in progress) per worker process; a request arriving past it "
        "gets 503.",
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="A request line plus headers larger than this gets 431 (400 with h11) and the connection is "
        "closed.",
    )
    header_timeout_seconds: float = Field(
        10,
        gt=0,
        le=600,
        description="A request's line and headers must arrive within this of the connection opening (or of a "
        "kept-alive connection's next request starting); otherwise the connection is closed.",
    )

    # --- MCP transport ---------------------------------------------------------------------
    transport_mode: Literal["stateless", "stateful"] = Field(
        "stateless",
        description="stateless: any replica serves any request (no sticky sessions). stateful: Mcp-Session-Id "
        "sessions held in this process (server-to-client requests work, but a fleet needs session affinity).",
    )
    json_response: bool = Field(
        False, description="Answer POSTs with plain JSON instead of SSE (no progress notifications)."
    )
    max_request_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="Larger request bodies get 413."
    )
    session_idle_timeout_seconds: float = Field(
        1800, gt=0, description="Stateful mode: idle sessions are closed after this."
    )
    max_sessions: int = Field(10_000, ge=1, description="Stateful mode: cap on concurrent sessions (503 past it).")
    event_store_max_events: int = Field(
        10_000,
        ge=0,
        le=1_000_000,
        description="Stateful mode: SSE events kept for resumption with Last-Event-ID (0 disables resumability).",
    )
    sse_retry_interval_ms: int = Field(
        1000, ge=0, le=600_000, description="Stateful mode: the SSE retry hint sent to clients (0 sends none)."
    )
    dns_rebinding_protection: bool = Field(True, description="Validate Host and Origin headers on /mcp.")
    allowed_hosts: CommaList = Field(
        default_factory=list,
        description="Host header values accepted on /mcp besides loopback (host or host:port, host:* for any port).",
    )
    allowed_origins: CommaList = Field(
        default_factory=list,
        description="Origin header values accepted on /mcp besides loopback (scheme://host[:port], :* for any port).",
    )
    request_state_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated secrets (>= 32 chars) sealing 2026-07-28 requestState; the first seals, all "
        "unseal. Every replica must share them. Unset: a per-process key is generated (one replica only).",
    )
    list_cache_ttl_seconds: int = Field(
        60,
        ge=0,
        le=86_400,
        description="SEP-2549 ttlMs hint on tools/prompts/resources lists and server/discover (2026-07-28).",
    )
    request_state_ttl_seconds: float = Field(600, gt=0, le=86_400, description="Lifetime of sealed requestState.")

    # --- authentication and authorization ------------------------------------------------
    auth_disabled: bool = Field(
        False,
        description="Turn authentication off (every caller is an anonymous admin). Accepted only on a loopback "
        "bind, unless MCPS_ALLOW_UNAUTHENTICATED_PUBLIC_BIND is also set.",
    )
    allow_unauthenticated_public_bind: bool = Field(
        False,
        description="The I-know flag: allow binding a non-loopback address with authentication disabled.",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Hashed API keys, comma-separated (or a JSON array): sha256:<hex>;principal=<id>;scopes=<a b>"
        "[;expires=<ISO 8601>]. Mint one with: python -m app keys new --principal NAME --scopes ...",
    )
    jwt_issuer: str | None = Field(None, description="JWT access tokens: the required iss (your identity provider).")
    jwt_audience: str | None = Field(
        None, description="JWT access tokens: the required aud. Default: MCPS_PUBLIC_URL (RFC 8707 resource)."
    )
    jwt_jwks_url: str | None = Field(None, description="JWT access tokens: the identity provider's JWKS URL.")
    jwt_public_key: SecretStr | None = Field(
        None, description="JWT access tokens: a static PEM public key instead of a JWKS URL."
    )
    jwt_algorithms: CommaList = Field(
        default_factory=lambda: ["RS256", "ES256", "PS256", "EdDSA"],
        description="Accepted JWT signature algorithms (asymmetric only; none and HS* are refused).",
    )
    jwt_leeway_seconds: float = Field(30, ge=0, le=300, description="Clock skew allowed on exp and nbf.")
    jwks_cache_seconds: float = Field(600, ge=10, le=86_400, description="How long fetched JWKS keys are trusted.")
    jwks_min_refresh_seconds: float = Field(
        30, ge=1, le=3600, description="Unknown kid triggers a JWKS refetch at most this often."
    )
    jwks_timeout_seconds: float = Field(3, gt=0, le=30, description="Timeout of a JWKS fetch.")
    auth_required_scopes: CommaList = Field(
        default_factory=list,
        description="Scopes every caller must hold to use /mcp at all (403 insufficient_scope otherwise).",
    )
    metrics_token: SecretStr | None = Field(
        None, description="When set, /metrics requires Authorization: Bearer <this token>."
    )

    # --- lifecycle ---------------------------------------------------------------------------
    drain_delay_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="After SIGTERM, /health/ready is 503 but new requests are still served this long, so load "
        "balancers stop routing here before the listener closes.",
    )
    shutdown_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="After the drain delay, in-flight requests get this long to finish before they are cancelled.",
    )
    retry_after_seconds: int = Field(2, ge=0, le=3600, description="Retry-After on 503 answers while shutting down.")
    readiness_check_timeout_seconds: float = Field(
        0.5, gt=0, le=30, description="Budget of each readiness dependency check."
    )

    # --- shared state (Redis) and the guard chain ------------------------------------------
    redis_url: SecretStr | None = Field(
        None,
        description="redis://[:password@]host:port/db (or rediss://): the state every replica shares (rate limits, "
        "cache, idempotency, tasks). Unset: in-process memory, correct for one replica only.",
    )
    redis_key_prefix: str = Field("mcps:", min_length=1, max_length=64, description="Prefix of every Redis key.")
    redis_timeout_seconds: float = Field(
        0.25, gt=0, le=10, description="Socket and connect timeout of Redis calls: an outage costs at most this."
    )
    rate_limit_capacity: float = Field(60, gt=0, description="Default tier: bucket size (burst), in tokens.")
    rate_limit_refill_per_second: float = Field(1.0, gt=0, description="Default tier: tokens added per second.")
    rate_limit_tiers: dict[str, RateTier] = Field(
        default_factory=dict,
        description='More tiers, as JSON: {"pro": {"capacity": 600, "refill_per_second": 10}}. A principal with '
        "scope tier:<name> gets that tier.",
    )
    rate_limit_per_tool: bool = Field(False, description="One bucket per principal and tool instead of per principal.")
    rate_limit_fallback: Literal["local", "allow", "deny"] = Field(
        "local",
        description="While Redis is unreachable: local (a bucket in this process sized for one replica), "
        "allow, or deny.",
    )
    rate_limit_lease_max: int = Field(
        64,
        ge=0,
        le=10_000,
        description="Redis: tokens a replica may take ahead for a busy principal (only from the top half of its "
        "bucket; spent locally within 0.5 s, else dropped). Fewer Redis round trips; 0 = every call decided in Redis.",
    )
    rate_limit_replicas: int = Field(
        1, ge=1, le=10_000, description="Replica count: the local fallback bucket gets 1/replicas of the tier."
    )
    cache_l1_ttl_seconds: float = Field(
        1.0, ge=0, le=60, description="In-process cache in front of Redis: entry lifetime (0 disables the L1)."
    )
    cache_l1_max_entries: int = Field(10_000, ge=1, description="In-process cache in front of Redis: size bound.")
    idempotency_ttl_seconds: float = Field(86_400, gt=0, description="How long an idempotency key's result is kept.")
    idempotency_lock_seconds: float = Field(
        120, gt=0, description="An idempotent write still running after this is presumed dead (its key frees up)."
    )
    idempotency_wait_seconds: float = Field(
        2.0, ge=0, le=60, description="A retry arriving while the first call runs waits this long before CONFLICT."
    )
    tool_timeout_seconds: float = Field(30, gt=0, le=3600, description="Default tool timeout (a policy may override).")
    upstream_connect_timeout_seconds: float = Field(3, gt=0, le=60, description="Third-party APIs: connect timeout.")
    upstream_read_timeout_seconds: float = Field(10, gt=0, le=300, description="Third-party APIs: read timeout.")
    upstream_total_timeout_seconds: float = Field(
        15, gt=0, le=600, description="Third-party APIs: bound on a whole call, retries included."
    )
    upstream_max_attempts: int = Field(3, ge=1, le=10, description="Third-party APIs: attempts for idempotent calls.")
    breaker_failure_threshold: int = Field(5, ge=1, description="Circuit breaker: failures within the window to open.")
    breaker_window_seconds: float = Field(30, gt=0, description="Circuit breaker: failure counting window.")
    breaker_open_seconds: float = Field(15, gt=0, description="Circuit breaker: time open before a half-open probe.")
    breaker_half_open_successes: int = Field(2, ge=1, description="Circuit breaker: probe successes needed to close.")

    # --- tool packs --------------------------------------------------------------------------
    packs: CommaList = Field(
        default_factory=lambda: ["system", "tasks"],
        description="Tool packs to enable, by name (built-in: system, tasks, github, weather, conformance; plus any "
        "installed under the mcp_service.packs entry-point group).",
    )
    tasks_max_per_principal: int = Field(10_000, ge=1, description="tasks pack: tasks one principal may hold.")
    github_api_url: str = Field(
        "https://api.github.com", description="github pack: REST API base URL (GitHub Enterprise: https://HOST/api/v3)."
    )
    github_token: SecretStr | None = Field(
        None, description="github pack: the service's own token (callers' tokens are never passed through)."
    )
    github_max_file_bytes: int = Field(
        1_000_000, ge=1, le=50_000_000, description="github pack: larger files are described, not returned."
    )
    weather_geocoding_url: str = Field(
        "https://geocoding-api.open-meteo.com/v1/search", description="weather pack: Open-Meteo geocoding endpoint."
    )
    weather_forecast_url: str = Field(
        "https://api.open-meteo.com/v1/forecast", description="weather pack: Open-Meteo forecast endpoint."
    )
    weather_cache_seconds: float = Field(600, gt=0, description="weather pack: how long an answer is fresh.")
    weather_stale_seconds: float = Field(
        86_400, ge=0, description="weather pack: how long a last good answer may be served (marked stale) in an outage."
    )

    # --- observability ---------------------------------------------------------------------
    workers: int = Field(1, ge=1, le=64, description="Worker processes (metrics are aggregated across them).")
    metrics_per_principal: bool = Field(
        False, description="Also count calls per principal id (a label; capped by MCPS_METRICS_PRINCIPAL_CAP)."
    )
    metrics_principal_cap: int = Field(
        100, ge=1, le=10_000, description="Distinct principal ids labelled before the rest count as 'other'."
    )
    mcp_access_log: bool = Field(True, description="One JSON line per MCP request (method, tool, principal, outcome).")
    mcp_access_log_level: Literal["DEBUG", "INFO", "WARNING"] = Field("INFO", description="Level of those lines.")
    trace_http_spans: bool = Field(
        False,
        description="While tracing (OTEL_EXPORTER_OTLP_ENDPOINT set): also an HTTP server span per request, parent "
        "of the MCP span (about 60 us of CPU each; the MCP span alone continues the caller's traceparent).",
    )
    trace_redis_commands: bool = Field(
        False, description="While tracing: a client span per Redis command (its outcome is on the MCP span anyway)."
    )

    @field_validator(
        "allowed_hosts", "allowed_origins", "packs", "jwt_algorithms", "auth_required_scopes", mode="before"
    )
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("request_state_keys", "api_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("request_state_keys")
    @classmethod
    def _key_length(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(key.get_secret_value()) < 32 for key in value):
            raise ValueError(
                "each key must be at least 32 characters "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for index, entry in enumerate(value):
            try:
                ApiKeyEntry.parse(entry.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"entry {index + 1}: {exc}") from None
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        unsafe = sorted(set(value) - ASYMMETRIC_ALGORITHMS)
        if unsafe:
            raise ValueError(f"only asymmetric algorithms are accepted, not {', '.join(unsafe)[:100]}")
        if not value:
            raise ValueError("at least one algorithm is needed")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("public_url", "jwt_jwks_url", "github_api_url", "weather_geocoding_url", "weather_forecast_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL such as https://mcp.example.com/mcp")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _auth_is_coherent(self) -> Settings:
        jwt_sources = [self.jwt_jwks_url, self.jwt_public_key]
        if self.jwt_issuer or any(jwt_sources):
            if not self.jwt_issuer:
                raise ValueError(f"JWT validation needs {ENV_PREFIX}JWT_ISSUER")
            if sum(source is not None for source in jwt_sources) != 1:
                raise ValueError(
                    f"JWT validation needs exactly one of {ENV_PREFIX}JWT_JWKS_URL or {ENV_PREFIX}JWT_PUBLIC_KEY"
                )
            if not self.resource_url:
                raise ValueError(
                    f"JWT validation needs {ENV_PREFIX}PUBLIC_URL (or {ENV_PREFIX}JWT_AUDIENCE): the audience"
                )
        if self.auth_disabled:
            if not is_loopback(self.host) and not self.allow_unauthenticated_public_bind:
                raise ValueError(
                    f"refusing to bind {self.host} (reachable from other machines) with authentication disabled; "
                    f"configure authentication, bind 127.0.0.1, or set "
                    f"{ENV_PREFIX}ALLOW_UNAUTHENTICATED_PUBLIC_BIND=true"
                )
        elif not self.auth_configured:
            raise ValueError(
                f"authentication is on but no credential is configured: set {ENV_PREFIX}API_KEYS (python -m app keys "
                f"new) or {ENV_PREFIX}JWT_ISSUER and friends, or {ENV_PREFIX}AUTH_DISABLED=true for local development"
            )
        return self

    # --- derived -------------------------------------------------------------------------------
    @property
    def auth_configured(self) -> bool:
        """Whether any credential source (API keys, JWT) is configured."""
        return bool(self.api_keys) or self.jwt_issuer is not None

    @property
    def resource_url(self) -> str | None:
        """This server's OAuth resource identifier (RFC 8707 / 9728): the JWT audience."""
        return self.jwt_audience or self.public_url

    def api_key_entries(self) -> list[ApiKeyEntry]:
        return [ApiKeyEntry.parse(key.get_secret_value()) for key in self.api_keys]

    @property
    def stateless(self) -> bool:
        return self.transport_mode == "stateless"

    def effective_allowed_hosts(self) -> list[str]:
        hosts = [*LOOPBACK_HOSTS, *self.allowed_hosts]
        if self.public_url:
            parts = urlsplit(self.public_url)
            hosts += [parts.netloc, f"{parts.hostname}:*"]
        return list(dict.fromkeys(hosts))

    def effective_allowed_origins(self) -> list[str]:
        origins = [*LOOPBACK_ORIGINS, *self.allowed_origins]
        if self.public_url:
            parts = urlsplit(self.public_url)
            origins.append(f"{parts.scheme}://{parts.netloc}")
        return list(dict.fromkeys(origins))


class SettingsError(Exception):
    """A configuration problem, already phrased as one readable line per problem."""


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad variable, naming it and the problem, never echoing the value (it may be a secret)."""
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"] if not isinstance(part, int)]
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(
            f"invalid setting {ENV_PREFIX}{loc[0].upper()}: {message}" if loc else f"invalid settings: {message}"
        )
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (and ``.env``), raising `SettingsError` with readable lines."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
    except json.JSONDecodeError as exc:
        raise SettingsError(f"invalid setting: a list value is not valid JSON ({exc.msg})") from None
