"""Long-running tools as tasks (the ``io.modelcontextprotocol/tasks`` extension): retention, leases, caps."""

from __future__ import annotations

from pydantic import Field

from app.settings.base import SettingsGroup


class LongRunSettings(SettingsGroup):
    """Long-running tools as tasks (the io.modelcontextprotocol/tasks extension): retention, leases, caps."""

    longrun_enabled: bool = Field(
        True,
        description="Serve the tasks extension: task-supporting tools answer a client that declares it with a "
        "task to poll. Off: every tool runs inside its request.",
    )
    longrun_ttl_seconds: int = Field(
        3600,
        ge=1,
        le=7 * 86_400,
        description="How long a task and its result stay readable after its last change (its ttlMs).",
    )
    longrun_poll_interval_ms: int = Field(
        1000, ge=50, le=60_000, description="The poll interval suggested to clients (pollIntervalMs)."
    )
    longrun_lease_seconds: float = Field(
        15,
        ge=1,
        le=600,
        description="A running task's lease; its replica renews it every third of this. A task whose lease "
        "lapsed (its replica died) is re-run elsewhere if its tool is safe to re-run, else it fails.",
    )
    longrun_check_seconds: float = Field(
        0.5,
        gt=0,
        le=60,
        description="How often a running task checks for cancellation and input (a replica looks for tasks whose "
        "lease lapsed every quarter lease, or this if longer).",
    )
    longrun_max_run_seconds: float = Field(
        3600, gt=0, le=7 * 86_400, description="A task still running after this ends failed (TIMEOUT)."
    )
    longrun_max_active_per_principal: int = Field(
        20,
        ge=1,
        le=10_000,
        description="Unfinished tasks one principal may hold across the fleet (RATE_LIMITED past it).",
    )
    longrun_max_running: int = Field(
        100, ge=1, le=10_000, description="Tasks running at once on this replica (UNAVAILABLE past it)."
    )
    longrun_max_result_bytes: int = Field(
        1_000_000,
        ge=1024,
        le=64_000_000,
        description="The largest task result kept (its JSON); a bigger one ends the task failed.",
    )
    longrun_drain_seconds: float = Field(
        20,
        ge=0,
        le=3600,
        description="At shutdown, how long running tasks may finish before they are handed back to the fleet.",
    )
