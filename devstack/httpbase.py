"""A small threaded HTTPS JSON server that every Python stand-in builds on.

It gives each route an operation name, and per operation: call counters and injected
faults (status + Retry-After, latency, dropped connection, after N calls). A clock offset
lets tests age credentials; `limits` shows and changes a throttling stand-in's limits.
Test controls live under `/_devstack/` and are never used by the product.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl, urlsplit

MAX_BODY_BYTES = 1024 * 1024
MAX_DRAIN_BYTES = 64 * 1024 * 1024  # beyond this an oversized body is not read; the connection is closed
CONTROL_PREFIX = "/_devstack/"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    target: str = ""  # the request line's target as sent (path and raw query), for stand-ins that forward it
    local_port: int = 0  # the port the request arrived on, for stand-ins that listen on several

    def json(self) -> Any:
        """The body as JSON; raises ValueError with a readable reason."""
        if not self.body:
            raise ValueError("the request body is empty")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"the request body is not valid JSON: {error}") from None


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list -> JSON, bytes/str -> as is, None -> empty
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


@dataclass
class Fault:
    """One injected fault for an operation (or `*` for all)."""

    operation: str
    status: int | None = None
    retry_after: int | None = None
    latency_ms: int = 0
    drop: bool = False
    after: int = 0  # let this many matching calls through first
    times: int | None = 1  # how many calls it affects; None = forever
    code: str | None = None  # the error code to answer (default: the stand-in's code for the status)
    message: str | None = None  # the error message to answer
    seen: int = 0


class Limits(Protocol):
    """A stand-in's throttling limits, as the `/_devstack/limits` control shows and changes them."""

    def describe(self) -> dict[str, Any]: ...

    def configure(self, body: Any) -> None: ...


class DroppedConnection(Exception):
    """Raised to close the connection without an answer."""


class Service:
    """Routes, counters, faults and clock of one stand-in."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._lock = threading.RLock()
        self.counters: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.clock_offset_seconds = 0.0
        self.limits: Limits | None = None  # stand-ins that throttle set this (devstack.throttling.Limiter)
        self.fallback: Callable[[Request], Response] = lambda request: Response(
            404, {"error": {"code": "NotFound", "message": f"no route for {request.method} {request.path}"}}
        )

    # -- routes ---------------------------------------------------------------------------
    def route(self, method: str, pattern: str, operation: str) -> Callable[[Handler], Handler]:
        """Register `handler` for `method` and a path regex with named groups."""

        def register(handler: Handler) -> Handler:
            self._routes.append((method, re.compile(pattern + r"/?$", re.IGNORECASE), operation, handler))
            return handler

        return register

    def now(self) -> float:
        """Wall clock plus the test-controlled offset."""
        return time.time() + self.clock_offset_seconds

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    # -- dispatch ------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        for method, pattern, operation, handler in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                request.params = {k: v for k, v in match.groupdict().items() if v is not None}
                injected = self._count_and_fault(operation)
                if injected is not None:
                    return injected
                self.authorize(request, operation)
                return handler(request)
        if any(pattern.match(request.path) for _, pattern, _, _ in self._routes):
            return Response(405, {"error": {"code": "MethodNotAllowed",
                                            "message": f"{request.method} is not allowed on {request.path}"}})
        return self.fallback(request)

    def authorize(self, request: Request, operation: str) -> None:
        """Stand-ins that enforce RBAC refuse the caller here, raising their own error type."""

    def count(self, what: str) -> None:
        """Count one event under `what` (an operation, or what a stand-in counts besides: 429s, challenges)."""
        with self._lock:
            self.counters[what] += 1

    def _count_and_fault(self, operation: str) -> Response | None:
        """Count the call; apply the latency of every active fault, then the first failure."""
        latency_ms = 0
        failure: Fault | None = None
        with self._lock:
            self.count(operation)
            for fault in self.faults:
                if fault.operation not in (operation, "*"):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                if fault.times is not None:
                    if fault.times <= 0:
                        continue
                    fault.times -= 1
                latency_ms += fault.latency_ms
                if failure is None and (fault.drop or fault.status is not None):
                    failure = fault
        if latency_ms:
            time.sleep(latency_ms / 1000)
        if failure is None:
            return None
        if failure.drop:
            raise DroppedConnection()
        response = self.fault_response(failure, operation)
        if failure.retry_after is not None:
            response.headers["Retry-After"] = str(failure.retry_after)
        return response

    def fault_response(self, fault: Fault, operation: str) -> Response:
        """The answer to an injected failure, in the ARM / Key Vault error shape; stand-ins override it."""
        message = fault.message or f"fault injected into {operation}"
        return Response(fault.status or 500, {"error": {"code": fault.code or "InjectedFault", "message": message}})

    def _control(self, request: Request) -> Response:
        try:
            return self._control_unchecked(request)
        except (ValueError, TypeError, KeyError) as error:
            return Response(400, {"error": {"code": "BadControlRequest", "message": str(error)}})

    def _control_unchecked(self, request: Request) -> Response:
        what = request.path[len(CONTROL_PREFIX):].strip("/")
        if what == "health":
            return Response(200, {"service": self.name, "status": "ok"})
        if what == "counters":
            if request.method == "DELETE":
                with self._lock:
                    self.counters.clear()
                return Response(204)
            with self._lock:
                return Response(200, dict(self.counters))
        if what == "faults":
            if request.method == "DELETE":
                with self._lock:
                    self.faults.clear()
                return Response(204)
            if request.method == "POST":
                spec = request.json()
                with self._lock:
                    self.faults.append(Fault(**spec))
                return Response(201, spec)
        if what == "limits" and self.limits is not None:
            if request.method == "POST":
                self.limits.configure(request.json())
            return Response(200, self.limits.describe())
        if what == "clock" and request.method == "POST":
            self.clock_offset_seconds = float(request.json()["offset_seconds"])
            return Response(200, {"offset_seconds": self.clock_offset_seconds})
        return self.control_extension(what, request)

    def control_extension(self, what: str, request: Request) -> Response:
        """Stand-ins add their own test controls (seeding, switches) by overriding this."""
        return Response(404, {"error": {"code": "NotFound", "message": f"unknown control {what}"}})


def _make_handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would add ~40 ms each
        server_version = f"devstack-{service.name}"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            return  # access logs would be noise; counters tell tests what happened

        def _handle(self) -> None:
            split = urlsplit(self.path)
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length < 0:
                    raise ValueError
            except ValueError:
                self.close_connection = True
                self._send(Response(400, {"error": {"code": "InvalidContentLength",
                                                    "message": "Content-Length is not a whole number"}}))
                return
            if length > MAX_BODY_BYTES:
                self._drain(length)
                self._send(Response(413, {"error": {"code": "RequestEntityTooLarge",
                                                    "message": f"the body exceeds {MAX_BODY_BYTES} bytes"}}))
                return
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=split.path,
                query=dict(parse_qsl(split.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                target=self.path,
                local_port=cast(ThreadingHTTPServer, self.server).server_port,  # bound (port 0 resolved)
            )
            try:
                response = service.dispatch(request)
            except DroppedConnection:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            except Exception as error:  # noqa: BLE001 - a stand-in must answer, and say why
                response = Response(500, {"error": {"code": "InternalServerError",
                                                    "message": f"{type(error).__name__}: {error}"}})
            self._send(response)

        def _drain(self, length: int) -> None:
            """Read and drop an oversized body, so the client gets our 413 instead of a reset connection."""
            if length > MAX_DRAIN_BYTES:
                self.close_connection = True
                return
            while length > 0:
                chunk = self.rfile.read(min(length, 64 * 1024))
                if not chunk:
                    break
                length -= len(chunk)

        def _send(self, response: Response) -> None:
            if response.body is None:
                payload = b""
            elif isinstance(response.body, bytes):
                payload = response.body
            elif isinstance(response.body, str):
                payload = response.body.encode()
            else:
                payload = json.dumps(response.body).encode()
            self.send_response(response.status)
            headers = {k.lower(): (k, v) for k, v in response.headers.items()}
            if payload and "content-type" not in headers:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in headers.values():
                self.send_header(name, value)
            if "content-length" not in headers:  # a HEAD answer may state the length of what GET would send
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _handle

    return _Handler


class _TLSThreadingServer(ThreadingHTTPServer):
    """Does the TLS handshake in the request thread, so a silent client never blocks accept()."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


def serve(service: Service, port_file: Path, cert: Path | None = None, key: Path | None = None,
          port: int = 0) -> ThreadingHTTPServer:
    """Bind 127.0.0.1 (port 0 = any free port) and write the port to `port_file`.

    The caller runs `serve_forever()` on the returned server.
    """
    server = _TLSThreadingServer(("127.0.0.1", port), _make_handler(service))
    if cert is not None and key is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        server.tls = context
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.replace(port_file)
    return server
