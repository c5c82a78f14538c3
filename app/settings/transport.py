"""The MCP transport at /mcp: sessions, framing, Host/Origin checks, request state, cache hints."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from app.settings.base import CommaList, SettingsGroup, split_list


class TransportSettings(SettingsGroup):
    """The MCP transport at /mcp: sessions, framing, Host/Origin checks, request state, cache hints."""

    transport_mode: Literal["stateless", "stateful"] = Field(
        "stateless",
        description="stateless: any replica serves any request (no sticky sessions). stateful: Mcp-Session-Id "
        "sessions held in this process (server-to-client requests work, but a fleet needs session affinity).",
    )
    response_framing: Literal["auto", "sse", "json"] = Field(
        "auto",
        description="How POST answers are framed. auto: plain JSON unless the call may send something before its "
        "result (a progressToken, a listen stream, a tool declared notifies=True; stateless mode only, stateful "
        "answers SSE); sse: always an SSE stream; json: always plain JSON (no progress or log notifications).",
    )
    json_response: bool | None = Field(
        None,
        description="Deprecated (use MCPS_RESPONSE_FRAMING): true means json, false means sse. Refused when it "
        "contradicts MCPS_RESPONSE_FRAMING.",
    )
    max_request_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="Larger request bodies get 413."
    )
    session_idle_timeout_seconds: float = Field(
        1800, gt=0, description="Stateful mode: idle sessions are closed after this."
    )
    max_sessions: int = Field(10_000, ge=1, description="Stateful mode: cap on concurrent sessions (503 past it).")
    max_sessions_per_principal: int = Field(
        100,
        ge=1,
        description="Stateful mode: sessions one principal may hold in this process (429 RATE_LIMITED past it).",
    )
    max_stream_seconds: float = Field(
        3600,
        gt=0,
        le=86_400,
        description="Stateful mode: a GET stream is ended cleanly after this long; the client reconnects "
        "(with Last-Event-ID when resumability is on).",
    )
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
    stream_keepalive_seconds: float = Field(
        15,
        ge=0,
        le=300,
        description="Long-lived event streams (subscriptions/listen, the GET stream, /sse) send an SSE comment "
        "after this much silence, so idle-timeout proxies keep them open (0 sends none).",
    )

    sse_transport: bool = Field(
        True,
        description="Serve the 2024-11-05 HTTP+SSE transport (GET /sse, POST /messages/) beside /mcp, for "
        "clients that speak only that one (mcp-remote --transport sse-only, older IDEs).",
    )
    sse_replica_id: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_-]{0,63}$",
        description="HTTP+SSE in a fleet: this replica's name, put in the POST URL (/messages/<id>/) so the "
        "balancer routes a session's messages to the replica holding its stream (docs/deployment.md).",
    )
    sse_max_sessions: int = Field(
        1000, ge=1, le=100_000, description="HTTP+SSE: concurrent /sse streams per process (503 past it)."
    )
    sse_max_sessions_per_principal: int = Field(
        10, ge=1, le=10_000, description="HTTP+SSE: concurrent /sse streams per principal (429 past it)."
    )
    sse_idle_timeout_seconds: float = Field(
        1800, gt=0, le=86_400, description="HTTP+SSE: a stream that received no client message for this long ends."
    )
    sse_max_lifetime_seconds: float = Field(
        28_800, gt=0, le=604_800, description="HTTP+SSE: a stream ends after this long whatever its activity."
    )

    @field_validator("allowed_hosts", "allowed_origins", "request_state_keys", mode="before")
    @classmethod
    def _transport_lists(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("request_state_keys")
    @classmethod
    def _key_length(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(len(key.get_secret_value()) < 32 for key in value):
            raise ValueError(
                "each key must be at least 32 characters "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return value

    @model_validator(mode="after")
    def _one_framing(self) -> Self:
        if self.json_response is None:
            return self
        legacy = "json" if self.json_response else "sse"
        if "response_framing" in self.model_fields_set and self.response_framing != legacy:
            raise ValueError(
                f"MCPS_JSON_RESPONSE={str(self.json_response).lower()} contradicts "
                f"MCPS_RESPONSE_FRAMING={self.response_framing}; set only MCPS_RESPONSE_FRAMING"
            )
        return self

    @property
    def stateless(self) -> bool:
        return self.transport_mode == "stateless"

    @property
    def framing(self) -> Literal["auto", "sse", "json"]:
        """The framing in force: MCPS_RESPONSE_FRAMING, or what the deprecated MCPS_JSON_RESPONSE meant."""
        if self.json_response is not None and "response_framing" not in self.model_fields_set:
            return "json" if self.json_response else "sse"
        return self.response_framing
