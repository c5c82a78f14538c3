"""Authentication and authorization over real HTTP: API keys, JWTs from a local JWKS, scopes, PRM."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.auth.api_keys import digest, new_key
from tests.conftest import ServiceFactory
from tests.support.clients import client_with_token
from tests.support.jwks_server import JwksServer, SigningKey, claims, running_idp
from tests.support.plugins import install_test_packs
from tests.support.rpc import call_tool, final, legacy_headers
from tests.support.service import ServiceProcess

pytestmark = pytest.mark.anyio

READER_KEY = new_key()  # scopes: conformance slow
OUTSIDER_KEY = new_key()  # scopes: other
METRICS_TOKEN = "metrics-" + "m" * 32
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def key_entry(key: str, principal: str, scopes: str, expires: str | None = None) -> str:
    entry = f"sha256:{digest(key).hex()};principal={principal};scopes={scopes}"
    return entry + (f";expires={expires}" if expires else "")


@pytest.fixture(scope="module")
def idp() -> Iterator[JwksServer]:
    with running_idp() as server:
        yield server


@pytest.fixture(scope="module")
def service(
    module_service_factory: ServiceFactory, idp: JwksServer, tmp_path_factory: pytest.TempPathFactory
) -> ServiceProcess:
    keys = ",".join(
        [
            key_entry(READER_KEY, "reader", "conformance slow"),
            key_entry(OUTSIDER_KEY, "outsider", "other"),
            key_entry(new_key(), "expired", "admin", "2020-01-01"),
        ]
    )
    env = {
        **install_test_packs(tmp_path_factory.mktemp("site")),
        "MCPS_AUTH_DISABLED": "false",
        "MCPS_PACKS": "conformance,slow,tasks",
        "MCPS_API_KEYS": keys,
        "MCPS_PUBLIC_URL": "http://127.0.0.1:{port}/mcp",
        "MCPS_JWT_ISSUER": idp.issuer,
        "MCPS_JWT_JWKS_URL": idp.url,
        "MCPS_JWKS_MIN_REFRESH_SECONDS": "1",
        "MCPS_METRICS_TOKEN": METRICS_TOKEN,
        "MCPS_LOG_LEVEL": "DEBUG",
    }
    return module_service_factory(env)


def post(service: ServiceProcess, token: str | None, body: dict[str, Any] = LIST) -> httpx2.Response:
    headers = legacy_headers()
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx2.post(service.mcp_url, headers=headers, json=body)


def audience(service: ServiceProcess) -> str:
    return service.mcp_url


def assert_401(response: httpx2.Response, service: ServiceProcess) -> None:
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    metadata = f"{service.base_url}/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{metadata}"' in challenge
    assert response.json()["error"] == "invalid_token"


def test_no_token(service: ServiceProcess) -> None:
    assert_401(post(service, None), service)


@pytest.mark.parametrize("token", ["garbage", "mcps_" + "x" * 43, "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", "Bearer"])
def test_garbage_tokens(service: ServiceProcess, token: str) -> None:
    assert_401(post(service, token), service)


def test_expired_and_revoked_keys(service: ServiceProcess) -> None:
    # The "expired" entry has admin scope and a past expiry: refused like any unknown key.
    assert_401(post(service, new_key()), service)


def test_valid_api_key(service: ServiceProcess) -> None:
    response = post(service, READER_KEY)
    assert response.status_code == 200
    assert "test_simple_text" in {t["name"] for t in final(response)["result"]["tools"]}


def test_valid_jwt(service: ServiceProcess, idp: JwksServer) -> None:
    token = idp.keys[0].sign(claims(idp.issuer, audience(service)))
    response = post(service, token)
    assert response.status_code == 200
    names = {t["name"] for t in final(response)["result"]["tools"]}
    assert "test_simple_text" in names
    assert "whoami" not in names  # this token has scope conformance only


@pytest.mark.parametrize(
    "change",
    [
        {"exp": int(time.time()) - 3600},
        {"nbf": int(time.time()) + 3600},
        {"iss": "http://127.0.0.1:1/other-idp"},
        {"aud": "https://another-service.example.com/mcp"},
    ],
    ids=["expired", "not-yet-valid", "wrong-issuer", "wrong-audience"],
)
def test_jwt_claims_are_enforced(service: ServiceProcess, idp: JwksServer, change: dict[str, Any]) -> None:
    token = idp.keys[0].sign({**claims(idp.issuer, audience(service)), **change})
    assert_401(post(service, token), service)


def test_exp_leeway_holds_end_to_end(service: ServiceProcess, idp: JwksServer) -> None:
    """L6: 10 s past exp is inside the 30 s leeway; the SDK's own exp check once refused it anyway."""
    now = int(time.time())
    recent = idp.keys[0].sign({**claims(idp.issuer, audience(service)), "iat": now - 60, "exp": now - 10})
    assert post(service, recent).status_code == 200
    stale = idp.keys[0].sign({**claims(idp.issuer, audience(service)), "iat": now - 120, "exp": now - 60})
    assert_401(post(service, stale), service)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_time_claims_must_be_numbers(service: ServiceProcess, idp: JwksServer, claim: str) -> None:
    """Info: PyJWT alone takes ``"exp": "1700000000"``; a time claim that is a string is refused."""
    valid = claims(idp.issuer, audience(service))
    token = idp.keys[0].sign({**valid, claim: str(valid.get(claim, int(time.time())))})
    assert_401(post(service, token), service)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused(service: ServiceProcess, idp: JwksServer) -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': 'k1'})}.{_b64(claims(idp.issuer, audience(service)))}."
    assert_401(post(service, token), service)


def test_hs256_signed_with_the_public_key_is_refused(service: ServiceProcess, idp: JwksServer) -> None:
    public_pem = idp.keys[0].public_pem()
    payload = claims(idp.issuer, audience(service))
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k1'})}.{_b64(payload)}".encode()
    import hashlib
    import hmac

    signature = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    token = f"{signing_input.decode()}.{signature.decode()}"
    assert_401(post(service, token), service)


def test_unknown_kid_then_rotation(service: ServiceProcess, idp: JwksServer) -> None:
    rotated = SigningKey("k2")
    token = rotated.sign(claims(idp.issuer, audience(service), subject="rotated-user"))
    assert_401(post(service, token), service)  # the IdP has not published k2 yet
    idp.keys.append(rotated)
    time.sleep(2.5)  # past the refresh floor (1 s) and the short negative cache (2 s)
    response = post(service, token)
    assert response.status_code == 200
    assert post(service, idp.keys[0].sign(claims(idp.issuer, audience(service)))).status_code == 200


def test_token_refused_by_a_different_signer(service: ServiceProcess, idp: JwksServer) -> None:
    impostor = SigningKey("k1")  # same kid, different key
    assert_401(post(service, impostor.sign(claims(idp.issuer, audience(service)))), service)


def test_protected_resource_metadata(service: ServiceProcess, idp: JwksServer) -> None:
    response = httpx2.get(f"{service.base_url}/.well-known/oauth-protected-resource/mcp")
    assert response.status_code == 200
    document = response.json()
    assert document["resource"] == service.mcp_url
    assert document["authorization_servers"] == [idp.issuer + "/"] or document["authorization_servers"] == [idp.issuer]
    assert {"admin", "conformance", "slow"} <= set(document["scopes_supported"])
    assert document["bearer_methods_supported"] == ["header"]


async def test_scopes_filter_lists_and_deny_calls(service: ServiceProcess) -> None:
    async with client_with_token(service.mcp_url, OUTSIDER_KEY) as client:
        assert (await client.list_tools()).tools == []
        assert (await client.list_prompts()).prompts == []
        assert (await client.list_resources()).resources == []
        result = await client.call_tool("whoami", {})
    assert result.is_error is True
    assert result.structured_content is not None
    assert result.structured_content["code"] == "PERMISSION_DENIED"
    assert result.structured_content["details"] == {"missing_scopes": ["slow"]}
    assert "requires scope slow" in result.content[0].text  # type: ignore[union-attr]
    assert not any("whoami body ran" in r.get("message", "") for r in service.log_records())


def test_principal_reaches_tool_code(service: ServiceProcess) -> None:
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    result = final(post(service, READER_KEY, body))["result"]
    assert result["structuredContent"] == {"id": "reader", "kind": "api_key", "scopes": ["conformance", "slow"]}


def test_jwt_subjects_and_api_key_principals_never_share_an_id(service: ServiceProcess, idp: JwksServer) -> None:
    """L5: an IdP token with sub=reader once became API-key principal reader (and saw its data)."""
    whoami = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
    by_key = final(post(service, READER_KEY, whoami))["result"]["structuredContent"]
    token = idp.keys[0].sign(claims(idp.issuer, audience(service), subject="reader", scope="conformance slow"))
    by_jwt = final(post(service, token, whoami))["result"]["structuredContent"]
    assert by_key["id"] == "reader"  # API-key principal ids are unchanged
    assert by_jwt == {
        "id": f"jwt:127.0.0.1:{idp.issuer.rsplit(':', 1)[1]}:reader",
        "kind": "jwt",
        "scopes": ["conformance", "slow"],
    }


def test_denied_resource_read_and_prompt_get_name_the_scope(service: ServiceProcess) -> None:
    read = {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": "test://static-text"}}
    error = final(post(service, OUTSIDER_KEY, read))["error"]
    assert error["code"] == -32003
    assert error["data"]["code"] == "PERMISSION_DENIED"
    assert error["data"]["details"]["missing_scopes"] == ["conformance"]
    get = {"jsonrpc": "2.0", "id": 4, "method": "prompts/get", "params": {"name": "test_simple_prompt"}}
    assert final(post(service, OUTSIDER_KEY, get))["error"]["data"]["code"] == "PERMISSION_DENIED"
    assert "result" in final(post(service, READER_KEY, read))


CREATE = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "create_task", "arguments": {}}}


@pytest.mark.parametrize("modern", [False, True], ids=["handshake-era", "2026-07-28"])
def test_a_jwt_without_the_scope_gets_a_step_up_challenge(
    service: ServiceProcess, idp: JwksServer, modern: bool
) -> None:
    """The MCP authorization spec's scope challenge: 403, insufficient_scope, the scope and the PRM URL."""
    weak = idp.keys[0].sign(claims(idp.issuer, audience(service), scope="tasks:read"))
    response = call_tool(service.base_url, "create_task", {"title": "step up"}, token=weak, modern=modern)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/json")
    metadata = f"{service.base_url}/.well-known/oauth-protected-resource/mcp"
    assert response.headers["www-authenticate"] == (
        f'Bearer error="insufficient_scope", scope="tasks:write", resource_metadata="{metadata}"'
    )
    error = response.json()["error"]
    assert error["data"]["code"] == "PERMISSION_DENIED"
    assert error["data"]["details"] == {"missing_scopes": ["tasks:write"]}

    stepped_up = idp.keys[0].sign(claims(idp.issuer, audience(service), scope="tasks:read tasks:write"))
    response = call_tool(service.base_url, "create_task", {"title": "step up"}, token=stepped_up, modern=modern)
    assert response.status_code == 200
    assert "www-authenticate" not in response.headers
    result = final(response)["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["title"] == "step up"


def test_step_up_covers_resources_and_prompts(service: ServiceProcess, idp: JwksServer) -> None:
    weak = idp.keys[0].sign(claims(idp.issuer, audience(service), scope="tasks:read"))
    read = {"jsonrpc": "2.0", "id": 6, "method": "resources/read", "params": {"uri": "test://static-text"}}
    get = {"jsonrpc": "2.0", "id": 7, "method": "prompts/get", "params": {"name": "test_simple_prompt"}}
    for body in (read, get):
        response = post(service, weak, body)
        assert response.status_code == 403
        assert 'error="insufficient_scope", scope="conformance"' in response.headers["www-authenticate"]
        assert response.json()["error"]["data"]["code"] == "PERMISSION_DENIED"


def test_no_step_up_to_admin_for_an_unknown_tool(service: ServiceProcess, idp: JwksServer) -> None:
    token = idp.keys[0].sign(claims(idp.issuer, audience(service), scope="tasks:read"))
    response = call_tool(service.base_url, "no_such_tool", {}, token=token)
    assert response.status_code == 200
    assert "www-authenticate" not in response.headers
    assert final(response)["result"]["structuredContent"]["code"] == "PERMISSION_DENIED"


def test_an_api_key_cannot_step_up_and_keeps_the_structured_answer(service: ServiceProcess) -> None:
    response = post(service, READER_KEY, CREATE)
    assert response.status_code == 200
    assert "www-authenticate" not in response.headers
    result = final(response)["result"]
    assert result["isError"] is True
    assert result["structuredContent"]["code"] == "PERMISSION_DENIED"
    assert result["structuredContent"]["details"] == {"missing_scopes": ["tasks:write"]}


def test_metrics_token(service: ServiceProcess) -> None:
    assert httpx2.get(f"{service.base_url}/metrics").status_code == 401
    wrong = httpx2.get(f"{service.base_url}/metrics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    ok = httpx2.get(f"{service.base_url}/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert ok.status_code == 200
    assert httpx2.get(f"{service.base_url}/health/ready").status_code == 200  # probes stay public


def test_secrets_never_reach_the_logs(service: ServiceProcess, idp: JwksServer) -> None:
    jwt_token = idp.keys[0].sign(claims(idp.issuer, audience(service)))
    for token in (READER_KEY, OUTSIDER_KEY, jwt_token, "mcps_" + "leak" * 11):
        post(service, token)
    text = service.log_text()
    for secret in (READER_KEY, OUTSIDER_KEY, jwt_token, jwt_token.split(".")[2], METRICS_TOKEN, "leak" * 11):
        assert secret not in text


def test_key_rotation_and_revocation(service_factory: ServiceFactory) -> None:
    old, new = new_key(), new_key()
    base = {"MCPS_AUTH_DISABLED": "false", "MCPS_PACKS": "conformance"}
    both = service_factory(
        {**base, "MCPS_API_KEYS": f"{key_entry(old, 'bot', 'conformance')},{key_entry(new, 'bot', 'conformance')}"}
    )
    assert post(both, old).status_code == 200
    assert post(both, new).status_code == 200
    both.stop()
    rotated = service_factory({**base, "MCPS_API_KEYS": key_entry(new, "bot", "conformance")})
    assert post(rotated, new).status_code == 200
    assert_401_without_metadata(post(rotated, old))


def assert_401_without_metadata(response: httpx2.Response) -> None:
    """API keys only: no authorization server exists, so no RFC 9728 document is advertised."""
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert "resource_metadata" not in response.headers["www-authenticate"]


def test_required_scope_is_403_insufficient_scope(service_factory: ServiceFactory) -> None:
    key, weak = new_key(), new_key()
    service = service_factory(
        {
            "MCPS_AUTH_DISABLED": "false",
            "MCPS_PACKS": "conformance",
            "MCPS_AUTH_REQUIRED_SCOPES": "mcp:use",
            "MCPS_API_KEYS": f"{key_entry(key, 'a', 'mcp:use conformance')},{key_entry(weak, 'b', 'conformance')}",
        }
    )
    assert post(service, key).status_code == 200
    response = post(service, weak)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert response.json() == {"error": "insufficient_scope", "error_description": "Required scope: mcp:use"}


def test_jwt_none_key_type_mismatch_is_caught_by_pyjwt() -> None:
    """Belt and braces for the HS/RS confusion: PyJWT itself refuses a PEM public key as an HMAC secret."""
    key = SigningKey("x")
    with pytest.raises(jwt.exceptions.InvalidKeyError):
        jwt.encode({"a": 1}, key.public_pem(), algorithm="HS256")


# Any header value HTTP/1.1 can carry (h11's field-value rule): latin-1 without controls, and no
# whitespace at either end.
_HEADER_TEXT = st.from_regex(r"\A[\x21-\x7e\x80-\xff]([\x20-\x7e\x80-\xff]{0,198}[\x21-\x7e\x80-\xff])?\Z")
_RESERVED = {"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade", "te", "trailer"}
_HEADER_NAME = st.from_regex(r"\A[a-z][a-z0-9-]{0,30}\Z").filter(lambda name: name not in _RESERVED)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    authorization=st.one_of(
        st.none(), _HEADER_TEXT, _HEADER_TEXT.map(lambda t: "Bearer " + t), st.just("Bearer mcps_")
    ),
    extra=st.dictionaries(_HEADER_NAME, _HEADER_TEXT, max_size=6),
    body=st.one_of(st.binary(max_size=3000), _JSON.map(lambda v: json.dumps(v).encode())),
)
def test_fuzzed_requests_never_pass_and_never_500(
    service: ServiceProcess, authorization: str | None, extra: dict[str, str], body: bytes
) -> None:
    headers = {**legacy_headers(), **extra}
    headers.pop("authorization", None)
    if authorization is not None:
        headers["authorization"] = authorization
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    response = httpx2.post(service.mcp_url, headers=raw, content=body, timeout=10)
    assert response.status_code < 500, response.text[:300]
    assert response.status_code in (401, 403), (response.status_code, response.text[:300])
