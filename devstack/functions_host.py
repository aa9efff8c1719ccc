"""`python -m devstack.functions_host`: run function_app's HTTP and queue functions locally, as the Functions host.

Why: the Functions host comes with Azure Functions Core Tools (downloaded from a CDN at install), yet
the tests, the demo and schemathesis need the HTTP API on a socket without it, and the queue trigger
needs instances polling Azurite. For queue triggers it starts `--instances N` worker processes
(`devstack.queue_host`, which says what it reproduces) and stops them by PID on SIGTERM or Ctrl+C.
For HTTP this server does what the host and the Python worker do, and nothing else:

- indexes `function_app` like the worker (the one `FunctionApp`, `get_functions()`), and routes
  `/api/<route>` by each `httpTrigger` binding's route template and methods. Like the host, a
  known route called with another method is a 404, not a 405 (Azure/azure-functions-host#10098);
- enforces the FUNCTION auth level: a key in `x-functions-key` or `?code=`; else 401, no body;
- builds the trigger input as the worker does, `Datum(type="http")` decoded by azure.functions'
  own `httpTrigger` converter (the body as bytes, as the worker gets it with RawHttpBodyBytes),
  calls the real function object, and encodes its return through the `http` output converter;
- answers an unhandled exception with 500 and no body, as the host does;
- refuses a request whose body length cannot be trusted (see `body_length`) and closes the connection.

Plain HTTP on 127.0.0.1, like `func start` on http://localhost:7071: a local development server
only. Run it with the stand-ins' env: `eval "$(python -m devstack up)"` first. The key comes
from DEVSTACK_FUNCTION_KEY, or is generated and printed as an `export` line.
"""

from __future__ import annotations

import argparse
import hmac
import json
import re
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devstack.app_index import load_app, triggered_by

KEY_ENV = "DEVSTACK_FUNCTION_KEY"
URL_ENV = "DEVSTACK_FUNCTIONS_URL"
ROUTE_PREFIX = "api"  # host.json extensions.http.routePrefix
MAX_REQUEST_BYTES = 4 * 1024 * 1024  # the app limits bodies to 64 KiB itself; this only bounds the server
SOCKET_TIMEOUT_SECONDS = 30  # the bound on a stalled or idle client connection
_PARAMETER = re.compile(r"\{(\w+)(?::[^}?]*)?(\?)?\}")
_DIGITS = re.compile(r"[0-9]{1,18}")  # RFC 9110: 1*DIGIT; longer overflows a 64-bit length: a 400, as in Kestrel


@dataclass(frozen=True)
class HttpFunction:
    """One HTTP-triggered function as the host routes it."""

    name: str
    route: str
    methods: frozenset[str]
    auth_level: str
    trigger_arg: str
    call: Callable[..., Any]
    pattern: re.Pattern[str]

    @property
    def literal_segments(self) -> int:
        return sum(1 for part in self.route.split("/") if "{" not in part)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


def route_pattern(route: str) -> re.Pattern[str]:
    """A host route template (`tokens/{registry}/{token}`, `{name?}` optional) as a regex on the raw path."""
    pattern, position = "", 0
    for match in _PARAMETER.finditer(route):
        pattern += re.escape(route[position:match.start()])
        name, optional = match.group(1), match.group(2)
        pattern += f"(?P<{name}>[^/]+)" + ("?" if optional else "")
        position = match.end()
    pattern += re.escape(route[position:])
    return re.compile(f"/{ROUTE_PREFIX}/{pattern}/?", re.IGNORECASE)


def http_functions(functions: Iterable[Any]) -> list[HttpFunction]:
    """The HTTP-triggered functions of `app.get_functions()`, from the raw bindings the worker sends the host.

    Most literal route segments first, as the host prefers literal routes over parameters.
    """
    found = []
    for function, trigger, _ in triggered_by(functions, "httpTrigger"):
        route = str(trigger.get("route") or function.get_function_name())
        methods = trigger.get("methods") or ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        found.append(HttpFunction(
            name=function.get_function_name(), route=route, methods=frozenset(str(m).upper() for m in methods),
            auth_level=str(trigger.get("authLevel", "FUNCTION")).upper(), trigger_arg=str(trigger["name"]),
            call=function.get_user_function(), pattern=route_pattern(route)))
    return sorted(found, key=lambda f: -f.literal_segments)


class FunctionsHost:
    """Routes, authenticates and invokes HTTP functions; the HTTP server around it is separate."""

    def __init__(self, functions: list[HttpFunction], key: str) -> None:
        self.functions = functions
        self._key = key

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes,
                 base_url: str) -> Reply:
        split = urlsplit(target)
        query = _query(split.query)
        for function in self.functions:
            match = function.pattern.fullmatch(split.path)
            if match is None or method.upper() not in function.methods:
                continue
            if function.auth_level != "ANONYMOUS" and not self._authorized(headers, query):
                return Reply(401, {}, b"")
            params = {name: unquote(value) for name, value in match.groupdict().items() if value is not None}
            return self._invoke(function, method, base_url + target, headers, query, params, body)
        return Reply(404, {}, b"")

    def _authorized(self, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        given = next((v for k, v in headers.items() if k.lower() == "x-functions-key"), None) or query.get("code")
        return given is not None and hmac.compare_digest(given.encode(), self._key.encode())

    @staticmethod
    def _invoke(function: HttpFunction, method: str, url: str, headers: Mapping[str, str],
                query: Mapping[str, str], params: Mapping[str, str], body: bytes) -> Reply:
        from azure.functions import meta

        registry = meta.get_binding_registry()  # type: ignore[no-untyped-call]
        datum = meta.Datum(type="http", value={
            "method": meta.Datum(method.upper(), "string"),
            "url": meta.Datum(url, "string"),
            "headers": {name.lower(): meta.Datum(value, "string") for name, value in headers.items()},
            "query": {name: meta.Datum(value, "string") for name, value in query.items()},
            "params": {name: meta.Datum(value, "string") for name, value in params.items()},
            "body": meta.Datum(body, "bytes"),
        })
        try:
            request = registry.get("httpTrigger").decode(datum, trigger_metadata=None)
            returned = function.call(**{function.trigger_arg: request})
            encoded = registry.get("http").encode(returned, expected_type=None)
        except Exception as error:  # noqa: BLE001 - the host answers an unhandled exception with a bare 500
            print(f"functions_host: {function.name} raised {type(error).__name__}", file=sys.stderr)
            return Reply(500, {}, b"")
        if encoded.type == "string":
            return Reply(200, {"Content-Type": "text/plain; charset=utf-8"}, str(encoded.value).encode())
        value = encoded.value
        return Reply(int(value["status_code"].value), {name: str(h.value) for name, h in value["headers"].items()},
                     bytes(value["body"].value or b""))


def _query(raw: str) -> dict[str, str]:
    """Query parameters as the host passes them: one string per name, repeated values joined by commas."""
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        values.setdefault(name, []).append(value)
    return {name: ",".join(items) for name, items in values.items()}


def body_length(content_lengths: list[str], chunked: bool) -> int | Reply:
    """The request body's length, or the answer for a framing that cannot be trusted (RFC 9112 section 6).

    Why so strict: a wrong length desynchronises the connection (a hang, or the rest of the body read
    as the next request). `Transfer-Encoding` with `Content-Length` is ambiguous (400); a chunked body
    alone is not read by this server (411); a length that is not a whole decimal number, or repeated
    with different values, is a 400; above MAX_REQUEST_BYTES a 413. The caller closes the connection.
    """
    values = {value.strip() for header in content_lengths for value in header.split(",")}
    if chunked:
        return Reply(400 if values else 411, {}, b"")
    if len(values) > 1 or any(_DIGITS.fullmatch(value) is None for value in values):
        return Reply(400, {}, b"")
    length = int(values.pop()) if values else 0
    return Reply(413, {}, b"") if length > MAX_REQUEST_BYTES else length


def _handler(host: FunctionsHost) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "devstack-functions-host"
        timeout = SOCKET_TIMEOUT_SECONDS  # a client that stalls mid-request or idles is disconnected

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            return

        def _handle(self) -> None:
            length = body_length(self.headers.get_all("Content-Length") or [],
                                 self.headers.get("Transfer-Encoding") is not None)
            if isinstance(length, Reply):
                self.close_connection = True  # the next request's start cannot be found: never read on
                self._send(length)
                return
            body = self.rfile.read(length) if length else b""
            base = f"http://127.0.0.1:{getattr(self.server, 'server_port', 0)}"
            self._send(host.dispatch(self.command, self.path, dict(self.headers.items()), body, base))

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        def __getattr__(self, name: str) -> Any:
            """Every method reaches routing (`do_TRACE`, `do_FOO`...): the host answers 404, never 501."""
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

    return _Handler


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/{ROUTE_PREFIX}"


def serve(functions: Iterable[Any], key: str, port: int = 0) -> LocalServer:
    """Serve the HTTP functions among `functions` (what `app.get_functions()` returned: it can be called once
    per app) on 127.0.0.1 (port 0 = any free one); the caller runs `serve_forever()` or `start_in_thread`."""
    host = FunctionsHost(http_functions(functions), key)
    return LocalServer(("127.0.0.1", port), _handler(host))


def start_in_thread(server: LocalServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="functions-host", daemon=True)
    thread.start()
    return thread


def local_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """A local.settings.json for `func start` from the stand-ins' env plus the ROTATOR_* already set."""
    from rotator.settings import SETTINGS

    values = {"FUNCTIONS_WORKER_RUNTIME": "python"}
    values.update({s.name: env.get(s.name, s.default or "") for s in SETTINGS})
    values.update({name: env[name] for name in ("AzureWebJobsStorage", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE",
                                                 "IDENTITY_ENDPOINT", "IDENTITY_HEADER") if name in env})
    return {"IsEncrypted": False, "Values": values}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops like Ctrl+C: the queue instances are stopped by PID on the way out


def main(argv: list[str] | None = None) -> int:
    import os

    from devstack.processes import StandInFailed
    from devstack.queue_config import HostConfigError, queue_functions
    from devstack.queue_host import PROJECT_ROOT, add_instance_arguments, settings_from, start_instances

    parser = argparse.ArgumentParser(prog="python -m devstack.functions_host", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=7071, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--local-settings", action="store_true",
                        help="print a local.settings.json for `func start` from the current env, and exit")
    parser.add_argument("--instances", type=int, default=1,
                        help="worker processes running the queue triggers, standing for instances (0 = none)")
    parser.add_argument("--log-dir", type=Path, default=PROJECT_ROOT / ".devstack" / "functions_host",
                        help="where the instances write their logs")
    add_instance_arguments(parser)
    args = parser.parse_args(argv)
    if args.local_settings:
        print(json.dumps(local_settings(os.environ), indent=2))
        return 0
    key = os.environ.get(KEY_ENV) or secrets.token_urlsafe(32)
    signal.signal(signal.SIGTERM, _interrupt)
    functions = list(load_app(args.app).get_functions())
    instances, server = None, None
    # As deployed, every ROTATOR_* setting is an app setting (infra sets them all): a binding's %ROTATOR_QUEUE%
    # resolves even when the env from `devstack up` leaves it at its default.
    app_settings = {name: str(value) for name, value in local_settings(os.environ)["Values"].items()}
    app_env = {**app_settings, **os.environ}
    try:
        if args.instances > 0 and queue_functions(functions, app_env):
            instances = start_instances(args.instances, args.log_dir, settings_from(args), app_env)
        server = serve(functions, key, args.port)
        print(f"export {KEY_ENV}='{key}'")
        print(f"export {URL_ENV}='{server.url}'", flush=True)
        print(f"functions_host: serving {server.url}; queue instances: {instances.pids if instances else []} "
              "(Ctrl+C or SIGTERM stops)", file=sys.stderr, flush=True)
        server.serve_forever()
    except (HostConfigError, StandInFailed) as error:
        print(f"functions_host: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.server_close()
        if instances is not None:
            instances.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
