"""What each tool, resource and prompt requires: the registry packs declare into and the guard chain reads.

A pack declares policy next to its item through the pack seam (`app.packs.api`); it never enforces
anything itself. Every item reaches the server through that seam, so the registry knows all of them,
and anything it does not know (an item added at run time, an unknown name) requires ``admin``:
nothing is ever reachable by default. The ``admin`` scope grants everything.

Cache tags may name the caller: ``{principal}`` in a tag is replaced by the principal's id, so
``tasks:{principal}`` on a read and on a write's ``invalidates`` drops only that tenant's entries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mcp.shared.uri_template import UriTemplate

META_KEY = "io.github.mcp-service/guard"  # our _meta namespace on results (cache hit, replay, stale)
IDEMPOTENCY_ARGUMENT = "idempotency_key"  # the optional argument every idempotent write accepts
ADMIN_SCOPE = "admin"  # grants every other scope (`app.auth.principal.Principal.missing`)
ADMIN_ONLY: tuple[str, ...] = (ADMIN_SCOPE,)

ArgumentsValidator = Callable[[dict[str, Any]], object]
TaskSupport = Literal["never", "optional", "required"]  # the tasks extension (SEP-2663), per tool


@dataclass(frozen=True, slots=True)
class ToolPolicy:
    scopes: tuple[str, ...]
    cost: float = 1.0  # rate-limit tokens one call takes
    cache_ttl_seconds: float | None = None  # read-only tools opt in to the shared cache
    cache_public: bool = False  # results do not depend on the caller (shared across principals)
    cache_tags: tuple[str, ...] = ()  # stored with cached results, for invalidation
    invalidates: tuple[str, ...] = ()  # tags dropped after a successful call (writes)
    idempotent_write: bool = False  # accepts an optional ``idempotency_key`` argument
    timeout_seconds: float | None = None  # None: the service default
    max_concurrency: int | None = None  # calls of this tool in flight per replica
    notifies: bool = False  # may send the client something before its result: its calls are answered with SSE
    # The tasks extension (`app.longrun`): whether a call may (optional) or must (required) run as a task
    # the client polls; whether a task whose replica died may run again from the start elsewhere; whether
    # the tool first asks its questions synchronously (multi-round-trip) and becomes a task once answered.
    task_support: TaskSupport = "never"
    rerun_safe: bool = False
    task_input_first: bool = False

    def __post_init__(self) -> None:
        if self.cost <= 0:
            raise ValueError("cost must be positive")
        if self.cache_ttl_seconds is not None and self.cache_ttl_seconds <= 0:
            raise ValueError("cache_ttl_seconds must be positive")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if self.task_support != "never" and self.cache_ttl_seconds is not None:
            raise ValueError("a task-supporting tool's result is its task's, never cached")
        if (self.rerun_safe or self.task_input_first) and self.task_support == "never":
            raise ValueError("rerun_safe and task_input_first only mean something for a task-supporting tool")


UNDECLARED_TOOL = ToolPolicy(scopes=ADMIN_ONLY)


def render_tags(tags: tuple[str, ...], principal_id: str) -> list[str]:
    return [tag.replace("{principal}", principal_id) for tag in tags]


@dataclass
class Policies:
    """Every declared item's policy; lookups of anything undeclared answer "admin only"."""

    _tools: dict[str, ToolPolicy] = field(default_factory=dict)
    _validators: dict[str, ArgumentsValidator] = field(default_factory=dict)
    _resources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _templates: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _prompts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _compiled: list[tuple[UriTemplate, tuple[str, ...]]] = field(default_factory=list)

    def declare_tool(self, name: str, policy: ToolPolicy, validator: ArgumentsValidator | None = None) -> None:
        if name in self._tools:
            raise ValueError(f"tool {name!r} is declared twice")
        self._tools[name] = policy
        if validator is not None:
            self._validators[name] = validator

    def declare_resource(self, uri_or_template: str, scopes: tuple[str, ...]) -> None:
        if UriTemplate.is_template(uri_or_template):
            self._templates[uri_or_template] = scopes
            self._compiled.append((UriTemplate.parse(uri_or_template), scopes))
        else:
            self._resources[uri_or_template] = scopes

    def declare_prompt(self, name: str, scopes: tuple[str, ...]) -> None:
        self._prompts[name] = scopes

    # --- lookups (the guard chain's side) ---------------------------------------------------------
    def tool(self, name: str) -> ToolPolicy:
        """The tool's policy; an undeclared name gets an admin-only policy with every default."""
        return self._tools.get(name, UNDECLARED_TOOL)

    def is_declared_tool(self, name: str) -> bool:
        """Whether a pack declared ``name`` (metrics label only these, so unknown names mint no series)."""
        return name in self._tools

    def arguments_validator(self, name: str) -> ArgumentsValidator | None:
        """The tool's own argument validation (pydantic, as the SDK runs it); None for an unknown tool."""
        return self._validators.get(name)

    def resource_scopes(self, uri: str) -> tuple[str, ...]:
        """Scopes to read ``uri``: its own declaration, else the first template that matches, else admin."""
        scopes = self._resources.get(uri)
        if scopes is not None:
            return scopes
        for template, template_scopes in self._compiled:
            if template.match(uri) is not None:
                return template_scopes
        return ADMIN_ONLY

    def template_scopes(self, uri_template: str) -> tuple[str, ...]:
        """Scopes of a resource template as listed (``resources/templates/list``), else admin."""
        return self._templates.get(uri_template, ADMIN_ONLY)

    def prompt_scopes(self, name: str) -> tuple[str, ...]:
        return self._prompts.get(name, ADMIN_ONLY)

    # --- read-only views, for callers that list what is declared ----------------------------------
    @property
    def tools(self) -> Mapping[str, ToolPolicy]:
        return self._tools

    @property
    def templates(self) -> Mapping[str, tuple[str, ...]]:
        return self._templates

    def all_scopes(self) -> list[str]:
        found = {s for p in self._tools.values() for s in p.scopes}
        for group in (self._resources, self._templates, self._prompts):
            found.update(s for scopes in group.values() for s in scopes)
        return sorted(found | {ADMIN_SCOPE})
