"""Loading packs: find each enabled `Pack`, read its settings, run its setup on a `PackContext`, and
apply what it declared to the server (public `MCPServer` API) and to the policy registry.

Order: every pack is resolved and its settings validated before any setup runs, so one start-up
reports every bad variable; a pack loads after the packs it requires. Any failure stops start-up
with a `PackLoadError` naming the pack (or the variable).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any

from mcp.server.mcpserver import MCPServer
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from app.backends import Backend, RedisConnection
from app.health import overall
from app.packs.api import Pack
from app.packs.apply import apply
from app.packs.context import HealthSnapshot, PackContext, PackSettings, PackStorage, ServiceView, SharedKey
from app.packs.upstreams import UpstreamBudget, Upstreams
from app.services import Services
from app.settings import Settings

ENTRY_POINT_GROUP = "mcp_service.packs"

BUILTIN_PACKS: dict[str, str] = {
    "system": "app.packs.system:pack",
    "tasks": "app.packs.tasks:pack",
    "github": "app.packs.github:pack",
    "weather": "app.packs.weather:pack",
    "github_tasks": "app.packs.github_tasks:pack",
    "conformance": "app.packs.conformance:pack",
}

PackSource = str | Pack[Any]


class PackLoadError(Exception):
    """A pack could not be found, configured or registered; the message names the pack or the variable."""


def resolve(name: str) -> Pack[Any]:
    """The built-in pack ``name``, else the one an installed distribution offers under the entry-point group."""
    target = BUILTIN_PACKS.get(name)
    try:
        if target is not None:
            module_name, _, attr = target.partition(":")
            found: object = getattr(importlib.import_module(module_name), attr)
        else:
            point = next((ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name), None)
            if point is None:
                installed = {*BUILTIN_PACKS, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))}
                known = ", ".join(sorted(installed)) or "none"
                raise PackLoadError(f"tool pack {name!r} is not installed (known packs: {known})")
            found = point.load()
    except PackLoadError:
        raise
    except Exception as exc:
        raise PackLoadError(f"tool pack {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(found, Pack):
        raise PackLoadError(f"tool pack {name!r} is not a Pack (found {type(found).__name__})")
    if found.name != name:
        raise PackLoadError(f"tool pack {name!r} calls itself {found.name!r}")
    return found


def read_settings(pack: Pack[Any]) -> PackSettings:
    """The pack's settings from ``MCPS_<PACK>_*`` (and ``.env``); bad values name their variables."""
    model = pack.settings_model
    if model.model_fields and model.model_config.get("env_prefix") != pack.env_prefix:
        raise PackLoadError(f"tool pack {pack.name!r}: its settings must read {pack.env_prefix}* (env_prefix)")
    clashes = sorted(f"{pack.env_prefix}{field}".upper() for field in model.model_fields if _is_core(pack, field))
    if clashes:
        raise PackLoadError(f"tool pack {pack.name!r}: {', '.join(clashes)} already name core settings")
    try:
        return model()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
            message = str(error["msg"]).removeprefix("Value error, ")
            where = f"{pack.env_prefix}{loc[0].upper()}" if loc else f"the {pack.name} pack's settings"
            lines.append(f"invalid setting {where}: {message}")
        raise PackLoadError("\n".join(lines)) from None


def _is_core(pack: Pack[Any], field: str) -> bool:
    return f"{pack.name}_{field}" in Settings.model_fields


def ordered(packs: Sequence[Pack[Any]]) -> list[Pack[Any]]:
    """``packs`` with each one after those it requires (otherwise in the order given)."""
    by_name = {pack.name: pack for pack in packs}
    for pack in packs:
        missing = [name for name in pack.requires if name not in by_name]
        if missing:
            raise PackLoadError(f"tool pack {pack.name!r} requires {', '.join(map(repr, missing))}: enable it too")
    done: dict[str, Pack[Any]] = {}
    visiting: set[str] = set()

    def visit(pack: Pack[Any]) -> None:
        if pack.name in done:
            return
        if pack.name in visiting:
            raise PackLoadError(f"tool pack {pack.name!r} requires itself through {', '.join(pack.requires)}")
        visiting.add(pack.name)
        for name in pack.requires:
            visit(by_name[name])
        done[pack.name] = pack

    for pack in packs:
        visit(pack)
    return list(done.values())


def redis_connection(backend: Backend) -> RedisConnection | None:
    """The backend's shared Redis connection, or None for the memory backend."""
    return backend.redis


def load_packs(server: MCPServer[Any], services: Services, packs: Sequence[PackSource] | None = None) -> None:
    """Load ``packs`` (None: the names in settings) into ``server``; any failure stops start-up."""
    sources = services.settings.packs if packs is None else packs
    chosen: dict[str, Pack[Any]] = {}
    for source in sources:
        pack = resolve(source) if isinstance(source, str) else source
        chosen.setdefault(pack.name, pack)
    loading = ordered(list(chosen.values()))
    settings: dict[str, PackSettings] = {}
    problems = []
    for pack in loading:
        try:
            settings[pack.name] = read_settings(pack)
        except PackLoadError as exc:
            problems.append(str(exc))
    if problems:
        raise PackLoadError("\n".join(problems))
    view = service_view(server, services, {"service": services.settings, **settings})
    shared: dict[SharedKey[Any], Any] = {}
    for pack in loading:
        context = PackContext(
            pack.name,
            settings=settings[pack.name],
            service=view,
            cache=services.cache,
            upstreams=upstreams(pack.name, services),
            storage=PackStorage(
                redis=redis_connection(services.backend),
                key_prefix=services.settings.redis_key_prefix,
                idempotency=services.backend.idempotency,
                idempotency_ttl_seconds=services.settings.idempotency_ttl_seconds,
            ),
            shared=shared,
            on_startup=services.on_startup,
        )
        try:
            pack.setup(context)
            apply(server, services.policies, context.declarations)
        except Exception as exc:
            raise PackLoadError(f"tool pack {pack.name!r} failed to load: {type(exc).__name__}: {exc}") from exc
        services.enabled_packs.append(pack.name)


def upstreams(pack: str, services: Services) -> Upstreams:
    settings = services.settings
    return Upstreams(
        pack,
        breakers=services.breakers,
        etag_cache=services.etag_cache,
        observer=services.upstream_observer,
        budget=UpstreamBudget(
            connect_timeout_seconds=settings.upstream_connect_timeout_seconds,
            read_timeout_seconds=settings.upstream_read_timeout_seconds,
            total_timeout_seconds=settings.upstream_total_timeout_seconds,
            max_attempts=settings.upstream_max_attempts,
        ),
        on_startup=services.on_startup,
    )


def service_view(server: MCPServer[Any], services: Services, settings: Mapping[str, BaseSettings]) -> ServiceView:
    core = services.settings
    lifecycle = services.lifecycle

    async def health() -> HealthSnapshot:
        checks = await services.health.run()
        phase = lifecycle.phase.value
        return HealthSnapshot(status=overall(checks) if lifecycle.ready else phase, phase=phase, checks=checks)

    return ServiceView(
        name=core.server_name,
        transport_mode=core.transport_mode,
        backend=services.backend.name,
        default_tool_timeout_seconds=core.tool_timeout_seconds,
        request_state_keys=tuple(key.get_secret_value().encode() for key in core.request_state_keys),
        enabled_packs=services.enabled_packs,
        policy=services.policies.tool,
        health=health,
        list_tools=server.list_tools,
        configuration=lambda: settings,
    )
