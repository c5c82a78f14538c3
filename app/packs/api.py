"""What a pack author writes against: `Pack`, a thin layer over the SDK's decorators that also
declares each item's policy, so the guard chain can enforce it.

    def register(server: MCPServer, services: Services) -> None:
        pack = Pack("tasks", server, services)

        @pack.tool(
            "get_task",
            description="...",
            scopes=("tasks:read",),
            read_only=True,
            cache_ttl_seconds=30,
            cache_tags=("tasks:{principal}",),
        )
        async def get_task(task_id: Annotated[str, Field(max_length=64)]) -> Task: ...

Every tool gets MCP annotations (readOnlyHint, destructiveHint, idempotentHint, openWorldHint)
from the same declaration, so what a client is told and what the service enforces cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations

from app.errors import contain_crashes
from app.policy import ToolPolicy
from app.services import Services

F = TypeVar("F", bound=Callable[..., Any])


class Pack:
    def __init__(self, name: str, server: MCPServer[Any], services: Services) -> None:
        self.name = name
        self.server = server
        self.services = services

    @property
    def settings(self) -> Any:
        return self.services.settings

    def tool(
        self,
        name: str,
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
    ) -> Callable[[F], F]:
        """Register a tool and its policy. ``read_only`` tools may opt in to the cache; writes may
        accept an ``idempotency_key`` (``idempotent_write``) and drop cache tags (``invalidates``)."""
        if cache_ttl_seconds is not None and not read_only:
            raise ValueError(f"{name}: only read-only tools may be cached")
        if idempotent_write and read_only:
            raise ValueError(f"{name}: a read-only tool has nothing to make idempotent")
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
        )

        def decorate(fn: F) -> F:
            self.server.add_tool(
                contain_crashes(fn, name),
                name=name,
                title=title,
                description=description,
                annotations=annotations,
                structured_output=structured_output,
            )
            # The SDK's own argument model for this function (public API), so the error boundary can
            # report invalid arguments field by field without echoing values.
            validator = Tool.from_function(fn, name=name, structured_output=structured_output).fn_metadata
            self.services.policies.declare_tool(name, policy, validator.validate_arguments)
            return fn

        return decorate

    def resource(
        self, uri: str, *, scopes: tuple[str, ...], name: str, description: str, mime_type: str = "text/plain"
    ) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            self.server.resource(uri, name=name, description=description, mime_type=mime_type)(fn)
            self.services.policies.declare_resource(uri, scopes)
            return fn

        return decorate

    def prompt(self, name: str, *, scopes: tuple[str, ...], description: str) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            self.server.prompt(name=name, description=description)(fn)
            self.services.policies.declare_prompt(name, scopes)
            return fn

        return decorate
