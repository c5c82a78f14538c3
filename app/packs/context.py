"""`PackContext`: everything a pack is given, and where it declares what it adds.

Modelled on the SDK's `Extension`: the server never hands itself to a pack. A pack's setup gets one
typed context (its own settings, the cache, an upstream-client factory, start-up hooks, storage for
its state, read-only facts about the service) and declares tools, resources and prompts on it, each
with its policy; the loader then applies those declarations to the server and the policy registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from mcp.types import Tool as ToolInfo
from mcp.types import ToolAnnotations
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.backends import CacheStore, IdempotencyStore, RedisConnection
from app.packs.declarations import (
    Declarations,
    MethodDeclaration,
    PromptDeclaration,
    RequestHandler,
    ResourceDeclaration,
    ToolDeclaration,
    with_idempotency_key,
)
from app.packs.upstreams import StartupHook, Upstreams
from app.policy import TaskSupport, ToolPolicy

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class PackSettings(BaseSettings):
    """Base of a pack's settings: read from ``MCPS_<PACK>_*`` variables (and ``.env``) at start-up.

    A subclass sets ``model_config = SettingsConfigDict(env_prefix="MCPS_<PACK>_")`` (the loader checks
    it), so a field ``token`` of pack ``github`` is ``MCPS_GITHUB_TOKEN``. Only enabled packs'
    settings are read; a bad value stops start-up naming the variable.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)


class NoSettings(PackSettings):
    """For packs without settings."""


S = TypeVar("S", bound=PackSettings)


class SharedKey(Generic[T]):
    """A typed name under which one pack shares an object with the packs that require it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"SharedKey({self.name!r})"


@dataclass(frozen=True, slots=True)
class PackStorage:
    """Where a pack keeps state that outlives a call."""

    redis: RedisConnection | None  # the backend's shared connection; None: memory backend (one replica)
    key_prefix: str  # the service's Redis key prefix; a pack adds its own namespace after it
    idempotency: IdempotencyStore  # records keyed by the pack (e.g. "done once per task"), shared by replicas
    idempotency_ttl_seconds: float


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    status: str  # healthy, degraded or unhealthy; the phase while starting or shutting down
    phase: str
    checks: list[dict[str, object]]


@dataclass(frozen=True, slots=True)
class ServiceView:
    """Read-only facts about the service a pack runs in (what the system pack reports, mostly)."""

    name: str
    transport_mode: str
    backend: str
    default_tool_timeout_seconds: float
    request_state_keys: tuple[bytes, ...]  # the fleet's shared secrets; empty when none are configured
    enabled_packs: Sequence[str]  # filled in as packs load
    policy: Callable[[str], ToolPolicy]
    health: Callable[[], Awaitable[HealthSnapshot]]
    list_tools: Callable[[], Awaitable[list[ToolInfo]]]
    configuration: Callable[[], Mapping[str, BaseSettings]]  # "service" and each enabled pack's settings

    @property
    def stateless(self) -> bool:
        return self.transport_mode == "stateless"


class PackContext(Generic[S]):
    """What one pack's setup receives; built by the loader, once per app and pack."""

    def __init__(
        self,
        name: str,
        *,
        settings: S,
        service: ServiceView,
        cache: CacheStore,
        upstreams: Upstreams,
        storage: PackStorage,
        shared: dict[SharedKey[Any], Any],
        on_startup: Callable[[StartupHook], None],
    ) -> None:
        self.name = name
        self.settings = settings
        self.service = service
        self.cache = cache
        self.upstreams = upstreams
        self.storage = storage
        self.declarations = Declarations()
        self._shared = shared
        self._on_startup = on_startup

    # --- resources -------------------------------------------------------------------------------
    def on_startup(self, hook: StartupHook) -> None:
        """Run ``hook`` when the app starts; it registers its own cleanup on the exit stack it is given."""
        self._on_startup(hook)

    def share(self, key: SharedKey[T], value: T) -> None:
        """Offer ``value`` to packs that require this one (they read it with `shared`)."""
        if key in self._shared:
            raise ValueError(f"{key.name} is already shared")
        self._shared[key] = value

    def shared(self, key: SharedKey[T]) -> T:
        """What another pack shared under ``key``; that pack must be listed in ``requires``."""
        if key not in self._shared:
            raise LookupError(f"nothing is shared as {key.name}: require the pack that provides it")
        return cast(T, self._shared[key])

    # --- declarations ------------------------------------------------------------------------------
    def tool(
        self,
        name: str | None = None,
        *,
        description: str,
        scopes: tuple[str, ...],
        title: str | None = None,
        read_only: bool = False,
        destructive: bool = False,
        idempotent: bool = False,
        open_world: bool = False,
        cost: float = 1.0,
        cache_ttl_seconds: float | None = None,
        cache_public: bool = False,
        cache_tags: tuple[str, ...] = (),
        invalidates: tuple[str, ...] = (),
        idempotent_write: bool = False,
        timeout_seconds: float | None = None,
        max_concurrency: int | None = None,
        structured_output: bool | None = None,
        input_schema: dict[str, Any] | None = None,
        notifies: bool = False,
        task_support: TaskSupport = "never",
        rerun_safe: bool = False,
        task_input_first: bool = False,
    ) -> Callable[[F], F]:
        """Declare a tool and its policy. ``read_only`` tools may opt in to the cache; writes may take an
        ``idempotency_key`` (``idempotent_write``: the seam adds the argument) and drop cache tags
        (``invalidates``). MCP annotations come from the same flags, so hints and enforcement agree.
        A tool that may send the client anything before its result (log messages, progress it reports
        unasked, sampling or elicitation requests) declares ``notifies``: its calls are then answered
        with an SSE stream; others get plain JSON unless the request asks for progress (docs/operations.md).

        ``task_support`` (``optional``/``required``): a client that declares the tasks extension gets a
        task to poll instead of waiting (docs/writing-a-pack.md, "Long-running tools"); ``rerun_safe``: a
        task whose replica died may run again from the start; ``task_input_first``: the tool asks its
        questions synchronously (InputRequiredResult) and becomes a task once they are answered."""
        label = name or "tool"
        if cache_ttl_seconds is not None and not read_only:
            raise ValueError(f"{label}: only read-only tools may be cached")
        if idempotent_write and read_only:
            raise ValueError(f"{label}: a read-only tool has nothing to make idempotent")
        annotations = ToolAnnotations(
            title=title,
            read_only_hint=read_only,
            destructive_hint=destructive if not read_only else False,
            idempotent_hint=idempotent or read_only,
            open_world_hint=open_world,
        )
        policy = ToolPolicy(
            scopes=scopes,
            cost=cost,
            cache_ttl_seconds=cache_ttl_seconds,
            cache_public=cache_public,
            cache_tags=cache_tags,
            invalidates=invalidates,
            idempotent_write=idempotent_write,
            timeout_seconds=timeout_seconds,
            max_concurrency=max_concurrency,
            notifies=notifies,
            task_support=task_support,
            rerun_safe=rerun_safe,
            task_input_first=task_input_first,
        )

        def decorate(fn: F) -> F:
            self.declarations.tools.append(
                ToolDeclaration(
                    fn=with_idempotency_key(fn) if idempotent_write else fn,
                    name=name or fn.__name__,
                    description=description,
                    policy=policy,
                    annotations=annotations,
                    title=title,
                    structured_output=structured_output,
                    input_schema=input_schema,
                )
            )
            return fn

        return decorate

    def resource(
        self,
        uri: str,
        *,
        scopes: tuple[str, ...],
        name: str | None = None,
        description: str | None = None,
        mime_type: str = "text/plain",
    ) -> Callable[[F], F]:
        """Declare a resource (or, with ``{variables}`` in ``uri``, a resource template) and its scopes."""

        def decorate(fn: F) -> F:
            self.declarations.resources.append(
                ResourceDeclaration(
                    fn=fn, uri=uri, scopes=scopes, name=name, description=description, mime_type=mime_type
                )
            )
            return fn

        return decorate

    def prompt(
        self, name: str | None = None, *, scopes: tuple[str, ...], description: str | None = None
    ) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            self.declarations.prompts.append(
                PromptDeclaration(fn=fn, scopes=scopes, name=name, description=description)
            )
            return fn

        return decorate

    def completion(self, fn: F) -> F:
        """Declare the ``completion/complete`` handler: ``async (ref, argument, context) -> Completion``."""
        self.declarations.completions.append(fn)
        return fn

    def method(self, method: str, params_type: type[BaseModel], handler: RequestHandler) -> None:
        """Serve a request method `MCPServer` has no decorator for (``logging/setLevel``, ``resources/subscribe``)."""
        self.declarations.methods.append(MethodDeclaration(method, params_type, handler))
