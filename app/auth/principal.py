"""The authenticated caller, as tool code sees it.

Packs isolate data by `Principal.id`. The ``admin`` scope grants every other scope. The
authorization stage decodes the caller once per message (`principal_from_access_token`) and puts
it on the call context; tool code reads it with `current_principal()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from mcp.server.auth.provider import AccessToken

from app.call import current_call
from app.credentials import jwt_principal_id
from app.policy import ADMIN_SCOPE

CredentialKind = Literal["api_key", "jwt", "anonymous", "local"]  # local: the stdio server's configured caller


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    scopes: frozenset[str]
    kind: CredentialKind
    client_id: str | None = None

    def missing(self, required: Iterable[str]) -> list[str]:
        """The required scopes this principal lacks, in order (empty when allowed)."""
        if ADMIN_SCOPE in self.scopes:
            return []
        return [scope for scope in required if scope not in self.scopes]

    @property
    def is_admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes


# Auth disabled (loopback development only): one local caller with every right.
ANONYMOUS = Principal(id="anonymous", scopes=frozenset({ADMIN_SCOPE}), kind="anonymous")
# No verified caller on a served message (not reachable through the HTTP auth layer): refused everything.
UNAUTHENTICATED = Principal(id="unauthenticated", scopes=frozenset(), kind="anonymous")


def current_principal() -> Principal:
    """The caller of the tool being run. Outside a request this is a programming error."""
    call = current_call()
    principal = call.principal if call is not None else None
    if principal is None:
        raise RuntimeError("no principal bound: current_principal() called outside an MCP request")
    return principal


def principal_from_access_token(token: AccessToken) -> Principal:
    """Our verifiers put the principal's parts into the SDK's `AccessToken`; read them back.

    The id is the verifier's ``principal`` claim: an API key's configured id as is, a JWT's
    ``jwt:<issuer host>:<sub>`` (see docs/security.md, "Principals"). A token without one (no verifier
    of ours made it) is not an API key, so its subject goes into the JWT namespace, never beside
    API-key ids.
    """
    claims = token.claims or {}
    kind: CredentialKind = "api_key" if claims.get("credential") == "api_key" else "jwt"
    principal = claims.get("principal")
    if principal:
        principal_id = str(principal)
    else:
        principal_id = jwt_principal_id(str(claims.get("iss") or ""), str(token.subject or token.client_id))
    return Principal(id=principal_id, scopes=frozenset(token.scopes), kind=kind, client_id=token.client_id)
