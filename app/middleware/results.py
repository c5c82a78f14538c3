"""Result shapes the guard stages read and write: serialized results, our ``_meta`` marks, error results.

Results reach middleware serialized (a dict) or as a model; stages that keep or mark a result work
on the dict form.
"""

from __future__ import annotations

from typing import Any

from mcp.types import CallToolResult, TextContent

from app.errors import ServiceError
from app.policy import META_KEY


def error_result(error: ServiceError) -> CallToolResult:
    """How a `ServiceError` reaches the caller of a tool: an ``isError`` result an agent can act on."""
    return CallToolResult(
        content=[TextContent(type="text", text=error.summary())],
        structured_content=error.to_dict(),
        is_error=True,
    )


def as_dict(result: Any) -> dict[str, Any] | None:
    """A result as its wire dict (a model is dumped the way the SDK serializes it)."""
    if isinstance(result, dict):
        return result
    dump = getattr(result, "model_dump", None)
    if dump is None:
        return None
    dumped: dict[str, Any] = dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def with_meta(result: dict[str, Any], **marks: Any) -> dict[str, Any]:
    """A copy of a serialized result with our marks merged into its ``_meta``."""
    meta = dict(result.get("_meta") or {})
    meta[META_KEY] = {**meta.get(META_KEY, {}), **marks}
    return {**result, "_meta": meta}


def is_final_success(result: Any) -> bool:
    """A result worth caching or replaying: not an error, and not a 2026-07-28 "input required"
    question (the same call continues with answers, so its first answer must not be stored). A task
    (the tasks extension's CreateTaskResult) is one: a retry with the same key finds the same task."""
    body = as_dict(result)
    if not body:
        return False
    return not body.get("isError") and body.get("resultType", "complete") in ("complete", "task")
