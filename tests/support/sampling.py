"""A stand-in for the client's model in sampling tests: answers as an LLM would, records what it was asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.types import CreateMessageRequestParams, CreateMessageResult, TextContent

ANSWER = "1. Draft the outline\n- Write the first section\n\n* Review it with the team\nPublish it"
SUGGESTED = ["Draft the outline", "Write the first section", "Review it with the team", "Publish it"]
MODEL = "test-model-1"


@dataclass
class FakeModel:
    """A ``sampling_callback``: answers `ANSWER` (after ``delay`` seconds, to stand for a client that stalls)."""

    delay: float = 0.0
    prompts: list[CreateMessageRequestParams] = field(default_factory=list)

    async def __call__(self, context: Any, params: CreateMessageRequestParams) -> CreateMessageResult:
        self.prompts.append(params)
        if self.delay:
            await anyio.sleep(self.delay)
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text=ANSWER), model=MODEL)

    def asked_about(self, title: str) -> bool:
        """Whether every prompt it got named the task ``title`` (the tool sends the caller's own task)."""
        texts = [m.content.text for p in self.prompts for m in p.messages if isinstance(m.content, TextContent)]
        return bool(texts) and all(title in text for text in texts)
