"""Per-tool, per-resource and per-prompt authorization; the caller onto the call context.

The SDK's HTTP auth has already answered 401/403 for missing or refused credentials; here the
verified caller becomes a `Principal` (decoded once, kept on the call context for every later
reader), lists are filtered to what it may use, and a call to anything else is refused before the
handler runs with PERMISSION_DENIED naming the missing scope (the error boundary shapes the
answer). Items without a declared policy need ``admin`` (the policy registry's rule).
A ``subscriptions/listen`` naming resources is held to the same rule as reading each of them: a
stream must not tell a caller when something it may not read has changed.

Scope step-up: a JWT (OAuth) caller can get a token with more scopes, so its refusal is also the
MCP authorization spec's scope challenge: HTTP 403 with ``WWW-Authenticate: Bearer
error="insufficient_scope", scope="<what the item requires>", resource_metadata="<PRM URL>"``
(recorded on the call context; the edge, `app.http.refusals`, sets them), for ``tools/call`` too,
whose refusal is then a JSON-RPC error rather than an ``isError`` result. An API key's scopes are
fixed by the operator: its caller has nothing to re-authorize with, and keeps the structured
PERMISSION_DENIED answer (a tool result for ``tools/call``). So does a refusal that only ``admin``
would lift: that is every undeclared name too (a typo, an item that does not exist), and a client
must not be sent to ask its authorization server for admin rights over a typo.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from pydantic import BaseModel

from app.auth.principal import ANONYMOUS, UNAUTHENTICATED, Principal, principal_from_access_token
from app.call import current_call
from app.errors import ErrorCode, ServiceError
from app.policy import ADMIN_ONLY, ADMIN_SCOPE, Policies


def _principal_of(ctx: ServerRequestContext[Any, Any], auth_disabled: bool, local: Principal | None) -> Principal:
    """The verified caller; with no verified user (a message not served through the HTTP auth layer) nobody,
    unless the server was built for a local transport (stdio), whose caller is configured, not presented."""
    request = ctx.request
    if local is not None and request is None:
        return local
    if auth_disabled:
        return ANONYMOUS
    user = request.scope.get("user") if request is not None else None
    if isinstance(user, AuthenticatedUser):
        return principal_from_access_token(user.access_token)
    return UNAUTHENTICATED


def _name(params: Mapping[str, Any] | None, key: str) -> str | None:
    value = (params or {}).get(key)
    return value if isinstance(value, str) else None


MAX_LISTEN_RESOURCES = 1000
FORBIDDEN = 403

# A refusal names what was asked for, but a name is caller-controlled text of any length: shown cut.
_SHOWN_NAME_CHARS = 64


def shown(name: str) -> str:
    """``name`` quoted for a message, cut to a readable length (the caller knows what it sent)."""
    if len(name) <= _SHOWN_NAME_CHARS:
        return repr(name)
    return repr(name[:_SHOWN_NAME_CHARS]) + f"... ({len(name)} characters)"


def _listen_uris(params: Mapping[str, Any] | None) -> list[str]:
    """The resource URIs a ``subscriptions/listen`` asks to hear about (wire or Python field name)."""
    notifications = (params or {}).get("notifications")
    if not isinstance(notifications, Mapping):
        return []
    uris = notifications.get("resourceSubscriptions", notifications.get("resource_subscriptions"))
    if not isinstance(uris, list):
        return []
    return [uri if isinstance(uri, str) else "" for uri in uris]


def denied(missing: list[str], what: str) -> ServiceError:
    return ServiceError(
        ErrorCode.PERMISSION_DENIED,
        f"{what} requires scope {' '.join(missing)}",
        details={"missing_scopes": missing},
    )


def challenge(required: tuple[str, ...] | list[str], resource_metadata: str | None) -> str:
    """The RFC 6750 section 3.1 / MCP scope challenge for a caller that lacks ``required``."""
    value = f'Bearer error="insufficient_scope", scope="{" ".join(required)}"'
    if resource_metadata is not None:
        value += f', resource_metadata="{resource_metadata}"'
    return value


class AuthorizationMiddleware:
    def __init__(
        self,
        policies: Policies,
        *,
        auth_disabled: bool,
        local_principal: Principal | None = None,
        resource_metadata: str | None = None,
    ) -> None:
        self.policies = policies
        self.auth_disabled = auth_disabled
        self.local_principal = local_principal
        self.resource_metadata = resource_metadata

    def _refuse(self, principal: Principal, required: tuple[str, ...], missing: list[str], what: str) -> ServiceError:
        """PERMISSION_DENIED; for a caller that can step up, the HTTP scope challenge as well."""
        call = current_call()
        if principal.kind == "jwt" and call is not None and ADMIN_SCOPE not in required:
            call.http_status = FORBIDDEN
            call.challenge = challenge(required, self.resource_metadata)
        return denied(missing, what)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        principal = _principal_of(ctx, self.auth_disabled, self.local_principal)
        call = current_call()
        if call is not None:
            call.principal = principal
        method = ctx.method
        if method == "tools/call":
            name = _name(ctx.params, "name") or ""
            policy = self.policies.tool(name)
            if call is not None:
                call.policy = policy
            missing = principal.missing(policy.scopes)
            if missing:
                raise self._refuse(principal, policy.scopes, missing, f"tool {shown(name)}")
        elif method == "resources/read":
            uri = _name(ctx.params, "uri") or ""
            required = self.policies.resource_scopes(uri) or ADMIN_ONLY
            missing = principal.missing(required)
            if missing:
                raise self._refuse(principal, required, missing, "this resource")
        elif method == "prompts/get":
            name = _name(ctx.params, "name") or ""
            required = self.policies.prompt_scopes(name) or ADMIN_ONLY
            missing = principal.missing(required)
            if missing:
                raise self._refuse(principal, required, missing, f"prompt {shown(name)}")
        elif method == "subscriptions/listen":
            uris = _listen_uris(ctx.params)
            if len(uris) > MAX_LISTEN_RESOURCES:  # each is checked here and held by the stream: bounded
                raise ServiceError(
                    ErrorCode.VALIDATION_ERROR,
                    f"a subscriptions/listen may name at most {MAX_LISTEN_RESOURCES} resources",
                    details={"field": "notifications.resourceSubscriptions", "limit": MAX_LISTEN_RESOURCES},
                )
            for uri in uris:
                required = self.policies.resource_scopes(uri) or ADMIN_ONLY
                missing = principal.missing(required)
                if missing:
                    raise self._refuse(principal, required, missing, "listening to this resource")
        result = await call_next(ctx)
        if principal.is_admin:
            return result
        return self._filter(method, result, principal)

    def _filter(self, method: str, result: HandlerResult, principal: Principal) -> HandlerResult:
        listing = _LISTINGS.get(method)
        if listing is None or result is None:
            return result
        field, key = listing
        body = (
            result.model_dump(by_alias=True, exclude_none=True, mode="json")
            if isinstance(result, BaseModel)
            else result
        )
        items = body.get(field)
        if not isinstance(items, list):
            return result
        required = self._required_for(method)
        kept = [item for item in items if not principal.missing(required(str(item.get(key, ""))) or ADMIN_ONLY)]
        return {**body, field: kept}

    def _required_for(self, method: str) -> Callable[[str], tuple[str, ...] | None]:
        policies = self.policies
        if method == "tools/list":
            return lambda name: policies.tool(name).scopes
        if method == "resources/list":
            return policies.resource_scopes
        if method == "resources/templates/list":
            return policies.templates.get
        return policies.prompt_scopes


# The list results the middleware filters: method -> (result field, item key). Results reach the
# middleware already serialized (wire field names), or as models, which are dumped to match.
_LISTINGS = {
    "tools/list": ("tools", "name"),
    "resources/list": ("resources", "uri"),
    "resources/templates/list": ("resourceTemplates", "uriTemplate"),
    "prompts/list": ("prompts", "name"),
}
