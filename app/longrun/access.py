"""Who may use the tasks extension, and who may see a task: shared by the ``tasks/*`` methods and
the listen streams that carry ``notifications/tasks``, so both answer the same way.

Gating (SEP-2663): only a 2026-07-28 request whose client declares the extension may use it;
otherwise -32021 naming the extension. A task is visible only to the principal that created it, and
only while that principal still holds its tool's scopes.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.types import MISSING_REQUIRED_CLIENT_CAPABILITY
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from app.auth.principal import Principal
from app.longrun.records import EXTENSION_ID, TaskRecord
from app.policy import Policies


def declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request may use the extension: the 2026-07-28 wire and a client that declares it."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False  # a legacy wire cannot carry a CreateTaskResult
    capabilities = ctx.session.client_capabilities
    extensions = capabilities.extensions if capabilities is not None else None
    return bool(extensions) and EXTENSION_ID in (extensions or {})


def missing_capability(what: str) -> MCPError:
    return MCPError(
        code=MISSING_REQUIRED_CLIENT_CAPABILITY,
        message=f"{what} needs the {EXTENSION_ID} extension: declare it in the client's capabilities",
        data={"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}},
    )


def owns(record: TaskRecord | None, principal: Principal | None) -> bool:
    """Whether ``principal`` created the task (to anyone else it does not exist)."""
    return record is not None and principal is not None and record.owner == principal.id


def missing_scopes(record: TaskRecord, principal: Principal, policies: Policies) -> list[str]:
    """The scopes of the task's tool that ``principal`` no longer holds."""
    return principal.missing(policies.tool(record.tool).scopes)
