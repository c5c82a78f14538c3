"""The tasks pack's settings (``MCPS_TASKS_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from app.packs.api import PackSettings


class TasksSettings(PackSettings):
    model_config = SettingsConfigDict(env_prefix="MCPS_TASKS_")

    max_per_principal: int = Field(10_000, ge=1, description="Tasks one principal may hold.")
