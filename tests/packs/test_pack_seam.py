"""The pack seam in process: what a pack declares reaches the server and the policy registry, settings
come from the pack's own variables, idempotent writes declare themselves once, failures name the pack."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from app.factory import create_app
from app.metrics import Metrics
from app.packs import PackLoadError, load_packs
from app.packs.api import NoSettings, Pack, PackContext, PackSettings, SharedKey
from app.policy import IDEMPOTENCY_ARGUMENT
from app.services import Services
from app.settings import load_settings

pytestmark = pytest.mark.anyio

SEEN: SharedKey[list[str]] = SharedKey("tests.seen")


class DemoSettings(PackSettings):
    model_config = SettingsConfigDict(env_prefix="MCPS_DEMO_")

    limit: int = Field(3, ge=1, le=10)


def demo_setup(pack: PackContext[DemoSettings]) -> None:
    seen: list[str] = []
    pack.share(SEEN, seen)

    @pack.tool("demo_write", description="Records a value.", scopes=("demo",), idempotent_write=True)
    async def demo_write(value: str) -> dict[str, Any]:
        seen.append(value)
        return {"value": value, "limit": pack.settings.limit}

    @pack.resource("demo://{name}", scopes=("demo:read",), description="A named thing.")
    def thing(name: str) -> str:
        return name

    @pack.prompt("demo-prompt", scopes=("demo:read",), description="Say hello.")
    def hello() -> str:
        return "hello"


def reader_setup(pack: PackContext[NoSettings]) -> None:
    seen = pack.shared(SEEN)

    @pack.tool("demo_count", description="How many values were written.", scopes=("demo",), read_only=True)
    def demo_count() -> int:
        return len(seen)


DEMO = Pack("demo", demo_setup, settings=DemoSettings)
READER = Pack("demo_reader", reader_setup, requires=("demo",))


def loaded(*packs: Pack[Any]) -> tuple[MCPServer[Any], Services]:
    services = Services.create(load_settings(auth_disabled=True, packs=[]), Metrics())
    server: MCPServer[Any] = MCPServer("seam-test")
    load_packs(server, services, packs)
    return server, services


async def test_declarations_reach_the_server_and_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPS_DEMO_LIMIT", "7")
    server, services = loaded(READER, DEMO)  # listed before what it requires: loaded after it
    assert services.enabled_packs == ["demo", "demo_reader"]
    tools = {tool.name: tool for tool in await server.list_tools()}
    assert set(tools) == {"demo_write", "demo_count"}
    policies = services.policies
    assert policies.tool("demo_write").idempotent_write is True
    assert policies.tool("demo_count").scopes == ("demo",)
    assert policies.resource_scopes("demo://x") == ("demo:read",)
    assert policies.prompt_scopes("demo-prompt") == ("demo:read",)
    assert (await server.call_tool("demo_write", {"value": "a"})).structured_content == {"value": "a", "limit": 7}
    assert (await server.call_tool("demo_count", {})).structured_content == {"result": 1}


async def test_an_idempotent_write_gets_the_key_and_never_sees_it() -> None:
    server, services = loaded(DEMO)
    tool = next(tool for tool in await server.list_tools() if tool.name == "demo_write")
    key = tool.input_schema["properties"][IDEMPOTENCY_ARGUMENT]
    assert IDEMPOTENCY_ARGUMENT not in tool.input_schema.get("required", [])
    assert {"type": "string", "minLength": 1, "maxLength": 200}.items() <= key["anyOf"][0].items()
    result = await server.call_tool("demo_write", {"value": "b", IDEMPOTENCY_ARGUMENT: "k1"})
    assert result.structured_content == {"value": "b", "limit": 3}
    validate = services.policies.arguments_validator("demo_write")
    assert validate is not None
    assert validate({"value": "c", IDEMPOTENCY_ARGUMENT: "k2"})[IDEMPOTENCY_ARGUMENT] == "k2"


def test_a_hand_declared_key_is_refused() -> None:
    def setup(pack: PackContext[NoSettings]) -> None:
        @pack.tool("twice", description="d", scopes=("x",), idempotent_write=True)
        def twice(idempotency_key: str | None = None) -> str:
            return "no"

    with pytest.raises(PackLoadError, match="'twice_pack' failed to load: ValueError: twice: declare"):
        loaded(Pack("twice_pack", setup))


def test_undeclared_means_admin() -> None:
    _, services = loaded(DEMO)
    policies = services.policies
    assert policies.tool("made_up").scopes == ("admin",)
    assert policies.is_declared_tool("made_up") is False
    assert policies.is_declared_tool("demo_write") is True
    assert policies.arguments_validator("made_up") is None
    assert policies.resource_scopes("other://x") == ("admin",)
    assert policies.template_scopes("other://{x}") == ("admin",)
    assert policies.prompt_scopes("made_up") == ("admin",)


def test_a_bad_pack_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPS_DEMO_LIMIT", "99")
    with pytest.raises(PackLoadError) as raised:
        loaded(DEMO)
    assert str(raised.value).startswith("invalid setting MCPS_DEMO_LIMIT: ")
    assert "99" not in str(raised.value)


def test_only_enabled_packs_read_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCPS_DEMO_LIMIT", "not a number")
    monkeypatch.setenv("MCPS_GITHUB_MAX_FILE_BYTES", "not a number")
    _, services = loaded(Pack("other", lambda pack: None))
    assert services.enabled_packs == ["other"]


def test_settings_must_read_the_packs_own_prefix() -> None:
    class Elsewhere(PackSettings):
        model_config = SettingsConfigDict(env_prefix="MCPS_DEMO_")
        limit: int = 1

    with pytest.raises(PackLoadError, match="must read MCPS_MISNAMED_"):
        loaded(Pack("misnamed", lambda pack: None, settings=Elsewhere))


def test_create_app_takes_pack_objects() -> None:
    app = create_app(load_settings(auth_disabled=True, packs=["not_installed"]), packs=[DEMO], configure_logs=False)
    assert app.state.services.enabled_packs == ["demo"]


def test_a_missing_requirement_is_named() -> None:
    with pytest.raises(PackLoadError, match="'demo_reader' requires 'demo': enable it too"):
        loaded(READER)


def test_the_built_in_composed_pack_requires_both(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PackLoadError, match="'github_tasks' requires 'github'"):
        loaded_names("tasks", "github_tasks")


def loaded_names(*names: str) -> Services:
    services = Services.create(load_settings(auth_disabled=True, packs=[]), Metrics())
    load_packs(MCPServer("seam-test"), services, names)
    return services


def test_no_pack_reaches_past_the_seam() -> None:
    """Packs import neither the guard chain nor the SDK gaps module, and name no private SDK attribute."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "app" / "packs"
    for path in root.rglob("*.py"):
        text = path.read_text()
        for forbidden in ("app.middleware", "app.sdk_gaps", "app.services", "_lowlevel_server", "_tool_manager"):
            if path.name in ("loader.py", "apply.py") and forbidden in ("app.sdk_gaps", "app.services"):
                continue  # the core side of the seam
            assert forbidden not in text, f"{path.relative_to(root)} uses {forbidden}"
