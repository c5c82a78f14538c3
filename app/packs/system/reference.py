"""``config://service`` and ``docs://tools``: the effective configuration and a tool reference."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import BaseModel, SecretStr

from app.auth.principal import current_principal
from app.packs.api import PackContext


def effective_settings(settings: BaseModel) -> dict[str, Any]:
    """Every setting with its effective value; secrets only say whether they are set."""
    out: dict[str, Any] = {}
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr) or (isinstance(value, list) and value and isinstance(value[0], SecretStr)):
            out[name] = f"<set: {len(value)} entries>" if isinstance(value, list) else "<set>"
        elif value is None and _is_secret(field.annotation):
            out[name] = "<unset>"
        else:
            out[name] = value.model_dump() if isinstance(value, BaseModel) else value
    normalized: dict[str, Any] = json.loads(json.dumps(out, default=str))
    return normalized


def _is_secret(annotation: Any) -> bool:
    return SecretStr in (annotation, *get_args(annotation))


def configuration(sources: Mapping[str, BaseModel]) -> dict[str, Any]:
    """The service's settings at the top level, and each enabled pack's under ``pack_settings``."""
    core = {name: effective_settings(model) for name, model in sources.items()}
    out = core.pop("service", {})
    out["pack_settings"] = core
    return out


def _arguments(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    lines = []
    for name, spec in (schema.get("properties") or {}).items():
        kind = spec.get("type") or " | ".join(str(a.get("type", "?")) for a in spec.get("anyOf", [])) or "value"
        bounds = [f"{k}={spec[k]}" for k in ("minLength", "maxLength", "minimum", "maximum", "maxItems") if k in spec]
        if "enum" in spec:
            bounds.append("one of " + ", ".join(map(str, spec["enum"])))
        description = spec.get("description", "")
        flag = "required" if name in required else "optional"
        extra = f" ({', '.join(bounds)})" if bounds else ""
        lines.append(f"  - `{name}`: {kind}, {flag}{extra}{' - ' + description if description else ''}")
    return lines


def register(pack: PackContext[Any]) -> None:
    service = pack.service

    @pack.resource(
        "config://service",
        scopes=("admin",),
        name="service-config",
        description="The service's effective configuration (secrets shown only as set or unset). Admin only.",
        mime_type="application/json",
    )
    def config() -> str:
        return json.dumps(configuration(service.configuration()), indent=2, sort_keys=True)

    @pack.resource(
        "docs://tools",
        scopes=("system:read",),
        name="tool-reference",
        description="A markdown reference of the tools you may call here: what each does, its arguments, scopes.",
        mime_type="text/markdown",
    )
    async def tools_reference() -> str:
        principal = current_principal()
        lines = [f"# Tools of {service.name}", ""]
        for tool in sorted(await service.list_tools(), key=lambda t: t.name):
            scopes = service.policy(tool.name).scopes
            if principal.missing(scopes):
                continue
            hints = tool.annotations
            traits = []
            if hints is not None:
                traits = [
                    label
                    for label, on in (
                        ("read-only", hints.read_only_hint),
                        ("destructive", hints.destructive_hint),
                        ("idempotent", hints.idempotent_hint),
                        ("open world", hints.open_world_hint),
                    )
                    if on
                ]
            lines += [f"## `{tool.name}`", "", tool.description or "", ""]
            lines.append(f"- scopes: {', '.join(scopes)}")
            if traits:
                lines.append(f"- traits: {', '.join(traits)}")
            arguments = _arguments(tool.input_schema)
            lines += ["- arguments:" if arguments else "- arguments: none", *arguments, ""]
        return "\n".join(lines)
