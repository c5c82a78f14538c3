"""What the guard stages share about the tool call being served.

`ToolCall` is read from the raw params (before the SDK validates them) once per message: `tool_call`
keeps it on the message's `CallRecord`, which collects what each stage decided (rate limit, cache,
idempotency, outcome) for metrics, traces and the access log, through a contextvar bound by the
outermost stage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from mcp_types.version import MODERN_PROTOCOL_VERSIONS

IDEMPOTENCY_ARGUMENT = "idempotency_key"
META_KEY = "io.github.mcp-service/guard"  # our _meta namespace on results (cache hit, replay, stale)


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    era: str  # "modern" (2026-07-28) or "legacy" (handshake era): results differ in shape

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, protocol_version: str) -> ToolCall:
        raw = params or {}
        name = raw.get("name")
        arguments = raw.get("arguments")
        era = "modern" if protocol_version in MODERN_PROTOCOL_VERSIONS else "legacy"
        return cls(
            name=name if isinstance(name, str) else "",
            arguments=arguments if isinstance(arguments, dict) else {},
            era=era,
        )

    def fingerprint(self, *extra: str, without: tuple[str, ...] = ()) -> str:
        """A stable digest of the call: tool, canonical arguments (minus ``without``) and ``extra``."""
        arguments = {k: v for k, v in self.arguments.items() if k not in without}
        canonical = json.dumps([self.name, arguments, *extra], sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class CallRecord:
    tool: str | None = None
    rate_limit: str | None = None  # allowed | limited
    rate_limit_source: str | None = None  # redis | memory | local | allow | deny
    cache: str | None = None  # hit | miss | coalesced | bypass
    idempotency: str | None = None  # new | replay | conflict | in_progress
    outcome: str = "ok"  # ok | tool_error | rate_limited | denied | timeout | error
    error_code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    call: ToolCall | None = None  # parsed by the first stage that asks (`tool_call`)


_record: ContextVar[CallRecord | None] = ContextVar("call_record", default=None)


def current_record() -> CallRecord | None:
    return _record.get()


def tool_call(params: Mapping[str, Any] | None, protocol_version: str) -> ToolCall:
    """The message's `ToolCall`, parsed once and shared by the stages through its record."""
    record = _record.get()
    if record is None:
        return ToolCall.from_params(params, protocol_version)
    call = record.call
    if call is None:
        call = record.call = ToolCall.from_params(params, protocol_version)
    return call


def bind_record(record: CallRecord) -> object:
    return _record.set(record)


def unbind_record(token: object) -> None:
    _record.reset(token)  # type: ignore[arg-type]


def with_meta(result: dict[str, Any], **marks: Any) -> dict[str, Any]:
    """A copy of a serialized result with our marks merged into its ``_meta``."""
    meta = dict(result.get("_meta") or {})
    meta[META_KEY] = {**meta.get(META_KEY, {}), **marks}
    return {**result, "_meta": meta}


def as_dict(result: Any) -> dict[str, Any] | None:
    """Results reach middleware serialized (a dict); a model is dumped the same way."""
    if isinstance(result, dict):
        return result
    dump = getattr(result, "model_dump", None)
    if dump is None:
        return None
    dumped: dict[str, Any] = dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def is_error_result(result: Any) -> bool:
    body = as_dict(result)
    return bool(body and body.get("isError"))


def is_final_success(result: Any) -> bool:
    """A result worth caching or replaying: not an error, and not a 2026-07-28 "input required"
    question (the same call continues with answers, so its first answer must not be stored)."""
    body = as_dict(result)
    if not body:
        return False
    return not body.get("isError") and body.get("resultType", "complete") == "complete"
