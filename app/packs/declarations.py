"""What a pack declares: its tools, resources, prompts and extra handlers, each with its policy.

A declaration is plain data. The pack's setup records them; the loader applies them to the server
through the SDK's public API and to the policy registry, in one place, once the setup has returned
(a pack that fails half-way registers nothing).

An idempotent write declares itself once: `with_idempotency_key` gives the tool an optional
``idempotency_key`` argument (so clients see it in the input schema and the guard chain can act on
it) and drops it before the tool's own function runs, so that function never names it; the
function can still read it (`current_idempotency_key`) to make its write converge.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Any

from mcp.server.context import ServerRequestContext
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from app.policy import IDEMPOTENCY_ARGUMENT, ToolPolicy

IDEMPOTENCY_KEY_MAX_CHARS = 200  # the guard chain's own bound on the key

IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_CHARS,
        description="Any unique string (e.g. a UUID). Retrying with the same key and arguments returns the first "
        "result instead of doing the work twice.",
    ),
]

_IDEMPOTENCY_KEY: ContextVar[str | None] = ContextVar("idempotency_key", default=None)


def current_idempotency_key() -> str | None:
    """The ``idempotency_key`` the caller sent to the idempotent write now running, if any.

    The guard chain replays a key's stored result, but a first attempt whose outcome is unknown
    (Redis stalled after the write was sent) leaves no result, and a retry runs the tool again. A
    tool that derives what it creates from the key (an id) makes that re-run find the first
    attempt's object instead of making a second one.
    """
    return _IDEMPOTENCY_KEY.get()


RequestHandler = Callable[[ServerRequestContext[Any, Any], Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ToolDeclaration:
    fn: Callable[..., Any]
    name: str
    description: str
    policy: ToolPolicy
    annotations: ToolAnnotations
    title: str | None = None
    structured_output: bool | None = None
    input_schema: dict[str, Any] | None = None  # a hand-written JSON Schema (what pydantic cannot express)


@dataclass(frozen=True, slots=True)
class ResourceDeclaration:
    fn: Callable[..., Any]
    uri: str  # a URI, or an RFC 6570 template
    scopes: tuple[str, ...]
    name: str | None = None
    description: str | None = None
    mime_type: str | None = None


@dataclass(frozen=True, slots=True)
class PromptDeclaration:
    fn: Callable[..., Any]
    scopes: tuple[str, ...]
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class MethodDeclaration:
    """A request method the SDK's `MCPServer` has no decorator for (e.g. ``logging/setLevel``)."""

    method: str
    params_type: type[BaseModel]
    handler: RequestHandler


@dataclass
class Declarations:
    """Everything one pack declared, in order."""

    tools: list[ToolDeclaration] = field(default_factory=list)
    resources: list[ResourceDeclaration] = field(default_factory=list)
    prompts: list[PromptDeclaration] = field(default_factory=list)
    completions: list[Callable[..., Awaitable[Any]]] = field(default_factory=list)
    methods: list[MethodDeclaration] = field(default_factory=list)


def with_idempotency_key(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` plus an optional keyword ``idempotency_key``, which the wrapper drops before calling it.

    The SDK reads a tool's arguments from its signature: the wrapper publishes ``fn``'s own
    signature (annotations evaluated) with the extra parameter, through ``__signature__`` and
    ``__annotations__``.
    """
    signature = inspect.signature(fn, eval_str=True)
    if IDEMPOTENCY_ARGUMENT in signature.parameters:
        raise ValueError(
            f"{fn.__name__}: declare idempotent_write=True and leave {IDEMPOTENCY_ARGUMENT} out; the seam adds it"
        )
    extra = inspect.Parameter(
        IDEMPOTENCY_ARGUMENT, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=IdempotencyKey | None
    )
    parameters = list(signature.parameters.values())
    at = next((i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD), len(parameters))
    parameters.insert(at, extra)

    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            # The guard chain's idempotency stage has acted on it; the tool reads it, if it wants, here.
            token = _IDEMPOTENCY_KEY.set(kwargs.pop(IDEMPOTENCY_ARGUMENT, None))
            try:
                return await fn(*args, **kwargs)
            finally:
                _IDEMPOTENCY_KEY.reset(token)

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _IDEMPOTENCY_KEY.set(kwargs.pop(IDEMPOTENCY_ARGUMENT, None))
            try:
                return fn(*args, **kwargs)
            finally:
                _IDEMPOTENCY_KEY.reset(token)

    hints = {p.name: p.annotation for p in parameters if p.annotation is not inspect.Parameter.empty}
    if signature.return_annotation is not inspect.Signature.empty:
        hints["return"] = signature.return_annotation
    _publish(wrapper, signature.replace(parameters=parameters), hints)
    return wrapper


def _publish(wrapper: Any, signature: inspect.Signature, hints: dict[str, Any]) -> None:
    """What `inspect.signature` and `typing.get_type_hints` (the SDK's readers) report for ``wrapper``."""
    wrapper.__signature__ = signature
    wrapper.__annotations__ = hints
