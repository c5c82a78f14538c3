"""docs/writing-a-pack.md, verbatim: its example pack installed by entry point and used over HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.auth.api_keys import digest, new_key
from tests.conftest import ServiceFactory
from tests.support.rpc import call_tool, tool_result
from tests.support.service import ROOT

WRITER, READER = new_key(), new_key()


def install_doc_pack(site: Path) -> dict[str, str]:
    doc = (ROOT / "docs" / "writing-a-pack.md").read_text()
    module = re.search(r"```python\n# my_quotes/pack.py\n(.*?)```", doc, re.DOTALL)
    entry = re.search(r'\[project\.entry-points\."mcp_service\.packs"\]\n(.*?)\n```', doc, re.DOTALL)
    assert module is not None
    assert entry is not None
    package = site / "my_quotes"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pack.py").write_text(module.group(1))
    dist = site / "my_quotes-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-quotes\nVersion: 1.0\n")
    name, _, target = entry.group(1).partition("=")  # TOML (quoted) to entry_points.txt (bare)
    (dist / "entry_points.txt").write_text(f"[mcp_service.packs]\n{name.strip()} = {target.strip().strip(chr(34))}\n")
    return {"PYTHONPATH": f"{site}:{ROOT}"}


@pytest.fixture
def service_env(tmp_path: Path) -> dict[str, str]:
    keys = ",".join(
        [
            f"sha256:{digest(WRITER).hex()};principal=alice;scopes=quotes:read quotes:write",
            f"sha256:{digest(READER).hex()};principal=bob;scopes=quotes:read",
        ]
    )
    return {
        **install_doc_pack(tmp_path / "site"),
        "MCPS_PACKS": "quotes",
        "MCPS_QUOTES_MAX_TEXT": "20",  # the pack's own setting, read from its own prefix
        "MCPS_AUTH_DISABLED": "false",
        "MCPS_API_KEYS": keys,
    }


def test_the_documented_pack_works(service_factory: ServiceFactory, service_env: dict[str, str]) -> None:
    service = service_factory(service_env)
    base = service.base_url
    missing = tool_result(call_tool(base, "get_quote", {"topic": "ada"}, token=WRITER))
    assert missing["structuredContent"]["code"] == "NOT_FOUND"
    added = tool_result(
        call_tool(base, "add_quote", {"topic": "ada", "text": "Hello", "idempotency_key": "k1"}, token=WRITER)
    )
    assert added["structuredContent"] == {"topic": "ada", "text": "Hello"}
    assert (
        tool_result(call_tool(base, "get_quote", {"topic": "ada"}, token=WRITER))["structuredContent"]["text"]
        == "Hello"
    )
    too_long = tool_result(call_tool(base, "add_quote", {"topic": "ada", "text": "x" * 21}, token=WRITER))
    assert too_long["structuredContent"]["code"] == "VALIDATION_ERROR"
    denied = tool_result(call_tool(base, "add_quote", {"topic": "x", "text": "y"}, token=READER))
    assert denied["structuredContent"]["details"]["missing_scopes"] == ["quotes:write"]
    invalid = tool_result(call_tool(base, "get_quote", {"topic": "NOT VALID"}, token=WRITER))
    assert invalid["structuredContent"]["code"] == "VALIDATION_ERROR"
    assert tool_result(call_tool(base, "get_quote", {"topic": "ada"}, token=READER))["structuredContent"]["code"] == (
        "NOT_FOUND"  # bob has his own quotes
    )
