"""The tasks pack's settings (``MCPS_TASKS_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from app.packs.api import PackSettings


class TasksSettings(PackSettings):
    model_config = SettingsConfigDict(env_prefix="MCPS_TASKS_")

    max_per_principal: int = Field(10_000, ge=1, description="Tasks one principal may hold.")
    sampling_timeout_seconds: float = Field(
        60,
        gt=0,
        le=600,
        description="suggest_subtasks (handshake era): how long the client's model (and a user approving the "
        "request) may take to answer; then the call ends with TIMEOUT.",
    )
    sampling_max_tokens: int = Field(
        600, ge=50, le=8000, description="suggest_subtasks: the max_tokens asked of the client's model."
    )
