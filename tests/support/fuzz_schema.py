"""Hypothesis strategies for fuzzing MCP requests: tool arguments from each tool's ``inputSchema``,
arbitrary JSON, and JSON-RPC envelopes that are almost right.

`arguments_for(schema)` is `from_schema`, a small generator for the subset of JSON Schema pydantic
emits (types, enum/const, anyOf/oneOf, $ref into $defs, string length and pattern, numeric bounds,
arrays, objects with required keys). hypothesis-jsonschema would do this, but its 0.23 release
fails inside draws with this project's hypothesis (6.170: ``'many' object has no attribute
'more'``). `mutated(schema)` then breaks valid arguments in one place (a wrong type, a missing
required key, an unknown key, a nasty string), which is where servers crash.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import strategies as st

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=50),
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=20,
)
# Strings that tend to break things: control characters, huge, unicode, path and template tricks.
NASTY_TEXT = st.one_of(
    st.sampled_from(
        ["", " ", "\x00", "\n", "../../etc/passwd", "{{7*7}}", "%s%s%n", "t_" + "a" * 16, "🙂" * 10, "\ud800x", "null"]
    ),
    st.text(min_size=1000, max_size=5000),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x1F), max_size=10),
)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Values valid against ``schema`` (best effort for the subset pydantic emits)."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of(*(from_schema(option, root) for option in schema[key]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of(*(from_schema({**schema, "type": k}, root) for k in kind))
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "number":
        return st.floats(
            min_value=schema.get("minimum"), max_value=schema.get("maximum"), allow_nan=False, allow_infinity=False
        )
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 60)
        pattern = schema.get("pattern")
        if pattern:
            return st.from_regex(re.compile(pattern), fullmatch=True).filter(lambda s: low <= len(s) <= high)
        return st.text(min_size=low, max_size=min(high, 200))
    if kind == "array":
        items = schema.get("items", {})
        return st.lists(
            from_schema(items, root) if items else JSON,
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 5), 5),
        )
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: from_schema(sub, root) for name, sub in properties.items() if name in required},
            optional={name: from_schema(sub, root) for name, sub in properties.items() if name not in required},
        )
    return JSON


def arguments_for(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return from_schema(schema)


@st.composite
def mutated(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    """Valid arguments broken in one place."""
    arguments = dict(draw(arguments_for(schema)))
    properties = list(schema.get("properties", {}))
    how = draw(st.sampled_from(["wrong_type", "drop_required", "unknown_key", "nasty_text", "not_an_object"]))
    if how == "wrong_type" and properties:
        arguments[draw(st.sampled_from(properties))] = draw(JSON)
    elif how == "drop_required" and schema.get("required"):
        arguments.pop(draw(st.sampled_from(schema["required"])), None)
    elif how == "nasty_text" and properties:
        arguments[draw(st.sampled_from(properties))] = draw(NASTY_TEXT)
    elif how == "not_an_object":
        return draw(st.one_of(st.lists(JSON_SCALARS, max_size=3), JSON_SCALARS))  # type: ignore[no-any-return]
    else:
        arguments[draw(st.text(min_size=1, max_size=20))] = draw(JSON)
    return arguments
