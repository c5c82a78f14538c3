"""What each tool, resource and prompt requires, declared by packs and enforced by the guard chain.

A pack declares policy next to its tool; it never enforces anything itself. An item a pack leaves
undeclared requires the pack's own name as a scope (e.g. ``conformance``), so nothing is ever
reachable by default. The ``admin`` scope grants everything.

Cache tags may name the caller: ``{principal}`` in a tag is replaced by the principal's id, so
``tasks:{principal}`` on a read and on a write's ``invalidates`` drops only that tenant's entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.shared.uri_template import UriTemplate

ADMIN_ONLY = ("admin",)  # what anything undeclared requires
IDEMPOTENCY_ARGUMENT = "idempotency_key"  # the optional argument of an ``idempotent_write`` tool
META_KEY = "io.github.mcp-service/guard"  # our _meta namespace on results (cache hit, replay, stale)

ArgumentsValidator = Callable[[dict[str, Any]], object]


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

    def __post_init__(self) -> None:
        if self.cost <= 0:
            raise ValueError("cost must be positive")
        if self.cache_ttl_seconds is not None and self.cache_ttl_seconds <= 0:
            raise ValueError("cache_ttl_seconds must be positive")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")


_UNDECLARED_TOOL = ToolPolicy(scopes=ADMIN_ONLY)


def render_tags(tags: tuple[str, ...], principal_id: str) -> list[str]:
    return [tag.replace("{principal}", principal_id) for tag in tags]


@dataclass
class Policies:
    tools: dict[str, ToolPolicy] = field(default_factory=dict)
    resources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    templates: dict[str, tuple[str, ...]] = field(default_factory=dict)
    prompts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    validators: dict[str, ArgumentsValidator] = field(default_factory=dict)
    _compiled: list[tuple[UriTemplate, tuple[str, ...]]] = field(default_factory=list)

    def declare_tool(self, name: str, policy: ToolPolicy, validator: ArgumentsValidator | None = None) -> None:
        self.tools[name] = policy
        if validator is not None:
            self.validators[name] = validator

    def declare_resource(self, uri_or_template: str, scopes: tuple[str, ...]) -> None:
        if UriTemplate.is_template(uri_or_template):
            self.templates[uri_or_template] = scopes
            self._compiled.append((UriTemplate.parse(uri_or_template), scopes))
        else:
            self.resources[uri_or_template] = scopes

    def declare_prompt(self, name: str, scopes: tuple[str, ...]) -> None:
        self.prompts[name] = scopes

    def tool(self, name: str) -> ToolPolicy:
        """The tool's declared policy; anything undeclared (an unknown name) requires ``admin``."""
        return self.tools.get(name) or _UNDECLARED_TOOL

    def is_declared_tool(self, name: str) -> bool:
        return name in self.tools

    def arguments_validator(self, name: str) -> ArgumentsValidator | None:
        """The tool's own argument validation (None: no such tool)."""
        return self.validators.get(name)

    def resource_scopes(self, uri: str) -> tuple[str, ...] | None:
        """Scopes to read ``uri``: its own declaration, else the first template that matches."""
        scopes = self.resources.get(uri)
        if scopes is not None:
            return scopes
        for template, template_scopes in self._compiled:
            if template.match(uri) is not None:
                return template_scopes
        return None

    def prompt_scopes(self, name: str) -> tuple[str, ...] | None:
        return self.prompts.get(name)

    def all_scopes(self) -> list[str]:
        found = {s for p in self.tools.values() for s in p.scopes}
        for group in (self.resources, self.templates, self.prompts):
            found.update(s for scopes in group.values() for s in scopes)
        return sorted(found | {"admin"})
