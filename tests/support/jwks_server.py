"""A real identity provider stand-in on loopback: serves a JWKS document that tests can rotate,
and signs tokens with its private keys (RSA, PyJWT)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class SigningKey:
    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None, headers: dict[str, Any] | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": kid or self.kid, **(headers or {})})


# How long a misbehaving answer goes on at most (a bound for the test run, not a figure under test).
_MISBEHAVE_SECONDS = 60.0


class JwksServer:
    """``mode``: "normal"; "drip" (a status line, then one byte at a time, never finishing); "huge"
    (more than the service accepts at once, then dripping). Both misbehaviours stop at `stop`."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.fetches = 0
        self.mode = "normal"
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                if server.mode != "normal":
                    self._misbehave(server.mode)
                    return
                body = json.dumps({"keys": [k.public_jwk() for k in server.keys]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _misbehave(self, mode: str) -> None:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()  # no content-length: the body ends when the connection does
                try:
                    if mode == "huge":
                        self.wfile.write(b" " * (1024 * 1024))
                    deadline = time.monotonic() + _MISBEHAVE_SECONDS
                    while time.monotonic() < deadline and not server._stopping.wait(0.2):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:
                    pass  # the service gave up on us, as it should

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks.json"
        self.issuer = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> JwksServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def running_idp() -> Iterator[JwksServer]:
    """An identity provider on loopback publishing one signing key, ``k1``; stopped on exit."""
    server = JwksServer()
    server.keys.append(SigningKey("k1"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def claims(
    issuer: str, audience: str, *, subject: str = "user-1", scope: str = "conformance", **extra: Any
) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": issuer, "aud": audience, "sub": subject, "scope": scope, "iat": now, "exp": now + 300, **extra}
