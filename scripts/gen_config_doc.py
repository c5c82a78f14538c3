"""Regenerate the settings tables in docs/configuration.md: the service's, one per group of
`app.settings.Settings` (serving, transport, auth, ...), then one per built-in pack that has settings
(each `Pack`'s own model, read from ``MCPS_<PACK>_*``).

Usage: python scripts/gen_config_doc.py [--check]   (--check exits 1 when the doc is stale)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from app.packs.loader import BUILTIN_PACKS, resolve
from app.settings import ENV_PREFIX, GROUPS

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
BEGIN = "<!-- settings-table:begin -->"
END = "<!-- settings-table:end -->"


def _default(field: object) -> str:
    default = getattr(field, "default", PydanticUndefined)
    factory = getattr(field, "default_factory", None)
    if default is PydanticUndefined and factory is not None:
        default = factory()
    if default is None:
        return "unset"
    if isinstance(default, list):
        return ", ".join(default) if default else "empty"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, dict) and default:  # as the variable is written: JSON
        return json.dumps(TypeAdapter(dict[str, Any]).dump_python(default, mode="json"), separators=(",", ":"))
    return str(default)


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    return _rows_of(dict(model.model_fields), prefix)


def _rows_of(fields: dict[str, FieldInfo], prefix: str) -> list[str]:
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in fields.items():
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name.upper()}` | `{_default(field)}` | {description} |")
    return rows


def table() -> str:
    parts: list[str] = []
    for group in GROUPS:
        own = {name: field for name, field in group.model_fields.items() if name in group.__annotations__}
        title = (group.__doc__ or group.__name__).strip().splitlines()[0].rstrip(".")
        if parts:
            parts.append("")
        parts += [f"### {group.__module__.rsplit('.', 1)[-1].capitalize()}: {title}", ""]
        parts += _rows_of(own, ENV_PREFIX)
    for name in BUILTIN_PACKS:
        pack = resolve(name)
        if pack.settings_model.model_fields:
            parts += [
                "",
                f"### The `{name}` pack (read only when it is enabled)",
                "",
                *_rows(pack.settings_model, pack.env_prefix),
            ]
    return "\n".join(parts)


def render(current: str) -> str:
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main() -> int:
    current = DOC.read_text()
    wanted = render(current)
    if "--check" in sys.argv:
        if wanted != current:
            print(f"{DOC} is stale: run python scripts/gen_config_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
