"""The ``code-review`` prompt: a structured review request for a model."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver.prompts.base import UserMessage
from pydantic import Field

from app.packs.api import PackContext

Focus = Literal["correctness", "security", "performance", "readability", "all"]


def register(pack: PackContext[Any]) -> None:
    @pack.prompt(
        "code-review",
        scopes=("system:read",),
        description="Review code in a given language with a chosen focus; paste the code after the prompt.",
    )
    def code_review(
        language: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9+#._ -]+$")],
        focus: Focus = "all",
    ) -> list[UserMessage]:
        aspects = {
            "correctness": "bugs, wrong edge cases, broken error handling",
            "security": "injection, secrets, unsafe input handling, authorization gaps",
            "performance": "needless work on hot paths, unbounded memory, blocking calls",
            "readability": "naming, structure, comments that say why",
        }
        wanted = aspects.values() if focus == "all" else [aspects[focus]]
        text = (
            f"You are reviewing {language} code. Focus on: {'; '.join(wanted)}.\n"
            "For each finding give: the location, what is wrong, why it matters, and a concrete fix. "
            "Order findings by severity. Say explicitly if you find nothing worth changing."
        )
        return [UserMessage(role="user", content=text)]
