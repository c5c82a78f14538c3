"""A real HTTP server on a free loopback port whose answers tests script per path.

It stands in for third-party APIs (GitHub, Open-Meteo, ...): the code under test talks real HTTP
to it, through its real client, with no mocking. Script it per route::

    with FakeHTTPServer() as fake:
        fake.route("/v1/forecast", Reply.json({"hourly": {...}}))               # same answer every time
        fake.route("/repos/{owner}/{repo}", Reply(503), Reply(503), Reply.json({...}))  # fail twice, then succeed
        fake.route("/slow", Reply.json({}, delay=2.0))                           # answer late
        fake.route("/etag", Reply.json({"v": 1}, etag='"v1"'))                   # 304 on a matching If-None-Match
        fake.route("/issues", lambda req: Reply.json({"echo": req.json()}), method="POST")
        ...
        assert fake.count("/repos/{owner}/{repo}") == 3
        assert fake.requests_to("/etag")[1].headers["if-none-match"] == '"v1"'

A route plays its replies in order and keeps repeating the last one. A reply may be a callable
taking the `Recorded` request (dynamic answers: echo, pagination, assertions). Unmatched requests
get a GitHub-style 404 JSON body. ``{name}`` segments in a path match one segment and show up in
`Recorded.path_params`. Every request is recorded (before any delay) with lower-cased headers.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    path_params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``etag`` adds an ``ETag`` header and answers 304 to a matching ``If-None-Match``."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str | None = None
    disconnect: bool = False

    @classmethod
    def json(
        cls,
        data: Any,
        status: int = 200,
        *,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        etag: str | None = None,
    ) -> Reply:
        return cls(
            status,
            json.dumps(data).encode(),
            {"content-type": "application/json; charset=utf-8", **(headers or {})},
            delay,
            etag,
        )

    @classmethod
    def text(
        cls, text: str, status: int = 200, *, headers: Mapping[str, str] | None = None, delay: float = 0.0
    ) -> Reply:
        return cls(status, text.encode(), {"content-type": "text/plain; charset=utf-8", **(headers or {})}, delay)

    @classmethod
    def drop(cls, *, delay: float = 0.0) -> Reply:
        """Close the connection without answering (the client sees the server disconnect)."""
        return cls(delay=delay, disconnect=True)


Handler = Callable[[Recorded], Reply]
Script = Reply | Handler


def unused_port() -> int:
    """A loopback port nobody listens on (for "connection refused" tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _etag_matches(if_none_match: str, etag: str) -> bool:
    def opaque(tag: str) -> str:
        tag = tag.strip()
        return tag[2:] if tag.startswith("W/") else tag

    candidates = [c for c in if_none_match.split(",") if c.strip()]
    return any(c.strip() == "*" or opaque(c) == opaque(etag) for c in candidates)


class Route:
    def __init__(self, method: str | None, path: str, script: list[Script]) -> None:
        if not script:
            raise ValueError("a route needs at least one reply")
        self.method = method.upper() if method else None
        self.path = path
        self._regex = re.compile(
            "^" + re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(path)) + "$"
        )
        self._script = list(script)
        self._lock = threading.Lock()
        self.hits = 0

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method is not None and self.method != method:
            return None
        found = self._regex.match(path)
        return None if found is None else found.groupdict()

    def next_reply(self, request: Recorded) -> Reply:
        with self._lock:
            step = self._script[min(self.hits, len(self._script) - 1)]
            self.hits += 1
        return step(request) if callable(step) else step


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeHTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and hang up are the point of half these tests


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real APIs (and pooled connections in the client)
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.fake._connection_opened(self.connection)

    def finish(self) -> None:
        self.server.fake._connection_closed(self.connection)
        with contextlib.suppress(OSError):  # the client may be gone already
            super().finish()

    def _handle(self) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        method = self.command.upper()
        route, params = fake._find(method, split.path)
        recorded = Recorded(
            method=method,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            path_params=params,
        )
        fake._record(recorded)
        if route is None:
            reply = Reply.json({"message": f"Not Found (no fake route for {method} {split.path})"}, 404)
        else:
            try:
                reply = route.next_reply(recorded)
            except Exception as exc:  # a broken test script shows up as a 500, not a hung client
                reply = Reply.json({"message": f"fake handler failed: {exc!r}"}, 500)
        if reply.delay and fake._stopping.wait(reply.delay):
            self.close_connection = True
            return
        if reply.disconnect:
            self.close_connection = True
            return
        self._write(method, reply, recorded)

    def _write(self, method: str, reply: Reply, recorded: Recorded) -> None:
        status, body = reply.status, reply.body
        headers = dict(reply.headers)
        if reply.etag is not None:
            headers["etag"] = reply.etag
            if _etag_matches(recorded.headers.get("if-none-match", ""), reply.etag):
                status, body = 304, b""
                headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        bodyless = status in (204, 304) or status < 200  # HTTP forbids a body here; clients won't read one
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if not bodyless:
                self.send_header("content-length", str(len(body)))
            self.end_headers()
            if method != "HEAD" and not bodyless:
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle


class FakeHTTPServer:
    """Serves on ``127.0.0.1`` at a free port; `start`/`stop` or use as a context manager."""

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeHTTPServer:
        """Listen (again on the same port after a `stop`, so a client sees the upstream come back)."""
        self._stopping.clear()
        server = _Server(("127.0.0.1", self.port), _RequestHandler)
        server.fake = self
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut open connections (pooled keep-alive ones too): the upstream is gone."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting ---------------------------------------------------------------------------

    def route(self, path: str, *replies: Script, method: str | None = None) -> Route:
        """Answer ``method`` (any when None) on ``path`` with ``replies`` in order, repeating the last.

        Replaces an earlier route for the same method and path (re-script mid-test: "now it recovered").
        """
        route = Route(method, path, list(replies))
        with self._lock:
            self._routes = [r for r in self._routes if not (r.path == path and r.method == route.method)]
            self._routes.append(route)
        return route

    def fail_then(
        self, path: str, *, failures: int, failure: Reply | None = None, success: Script, method: str | None = None
    ) -> Route:
        """``failures`` failing answers (503 by default), then ``success`` forever."""
        failing = failure or Reply.json({"message": "Service Unavailable"}, 503)
        return self.route(path, *([failing] * failures), success, method=method)

    def reset(self) -> None:
        """Forget routes and recorded requests."""
        with self._lock:
            self._routes = []
            self._requests = []

    # --- inspecting --------------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        """Requests that match ``path`` (a literal path or a route pattern with ``{name}`` segments)."""
        probe = Route(method, path, [Reply()])
        return [r for r in self.requests if probe.match(r.method, r.path) is not None]

    def count(self, path: str, method: str | None = None) -> int:
        return len(self.requests_to(path, method))

    def __iter__(self) -> Iterator[Recorded]:
        return iter(self.requests)

    # --- used by the request handler ---------------------------------------------------------

    def _find(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        with self._lock:
            routes = list(reversed(self._routes))  # the latest matching route wins
        for route in routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None, {}

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self._requests.append(request)

    def _connection_opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _connection_closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)
