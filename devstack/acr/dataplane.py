"""The ACR login server of one registry: ACR's token service, and a proxy to the real registry.

Clients follow ACR's flow: `GET /v2/` answers 401 with a Bearer challenge pointing at
`/oauth2/token` here; `GET /oauth2/token` with HTTP Basic `<token name>:<password>` returns a
JWT granting what the token's scope map allows (oauth.py has the rest of ACR's token service:
refresh tokens, `/oauth2/exchange`, `POST /oauth2/token`); every `/v2/<repository>/...` call then
carries that JWT and is streamed to the shared docker-registry backend (`registry_backend`), which
verifies it. Repository names get the registry name as a prefix on the way to the backend
(and lose it on the way back), so registries never see each other's repositories.

httpbase's handler reads whole bodies (1 MiB cap) and cannot stream, so `/v2/<repository>/...`
is served by a handler class that `LoginService.attach` installs on the listening server;
everything else goes through the ordinary `Service` routes, counters and faults.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import re
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPResponse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from devstack import bearer
from devstack.acr.oauth import NULL_USER, UNAUTHORIZED_MESSAGE, RefreshTokens, form, registry_error, unauthorized
from devstack.acr.registry_backend import RegistryConfig, load_backend
from devstack.acr.store import LookupToken, PasswordView, TokenView
from devstack.httpbase import DroppedConnection, Request, Response, Service, serve

TOKEN_PATH = "/oauth2/token"
ACCESS_TOKEN_SECONDS = 300
BACKEND_TIMEOUT_SECONDS = 60
COPY_BLOCK_BYTES = 64 * 1024
MAX_REWRITTEN_BODY_BYTES = 4 * 1024 * 1024
API_VERSION_HEADER = ("Docker-Distribution-Api-Version", "registry/2.0")

# Scope-map verbs (after `repositories/<repository>/`) and the registry actions they grant.
SCOPE_MAP_ACTIONS = {"content/read": "pull", "metadata/read": "pull",
                     "content/write": "push", "content/delete": "delete"}
ALL_ACTIONS = frozenset({"pull", "push", "delete"})
# What an ACR refresh token from an exchange allows (its `permissions.actions` is "*").
EVERY_REPOSITORY_ACTION = tuple(f"repositories/*/{verb}" for verb in SCOPE_MAP_ACTIONS)

# The distribution spec's repository name grammar (lower case components joined by `/`).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_REPOSITORY_PATH = re.compile(rf"/v2/(?P<name>{_COMPONENT}(?:/{_COMPONENT})*?)/(?P<rest>(?:manifests|blobs|tags)/.*)")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_LINK_URL = re.compile(r"<([^>]*)>")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "trailers", "transfer-encoding", "upgrade"})
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "content-length", "expect"}


# -- credentials ---------------------------------------------------------------------------
def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an HTTP Basic header; None when absent or malformed."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, colon, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if colon and user else None


def _slot_refusal(slot: PasswordView, now: float, replication_delay: float) -> str | None:
    if slot.expiry is not None and slot.expiry <= now:
        return "expired"
    if now - slot.created < replication_delay:
        return "not-replicated"
    return None


def login_refusal(token: TokenView, password: str, now: float, replication_delay: float) -> str | None:
    """Why `password` does not log `token` in (a reason for tests, never shown to clients), or None.

    A password is good in a slot whose value matches, that has not expired and whose
    (re)generation is older than the replication delay, on an enabled token.
    """
    matching = [slot for slot in token.passwords
                if hmac.compare_digest(slot.value.encode(), password.encode())]
    if not matching:
        return "wrong-password"
    if not token.enabled:
        return "disabled"
    refusals = [_slot_refusal(slot, now, replication_delay) for slot in matching]
    return None if None in refusals else refusals[0]


@dataclass(frozen=True)
class Grantee:
    """Who an access token is for, and the scope-map actions that bound what it grants."""

    name: str
    actions: tuple[str, ...]


# -- scopes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """One requested scope, `type:name:action[,action]`."""

    type: str
    name: str
    actions: frozenset[str]


def parse_scopes(raw: str) -> list[Scope]:
    """Space-separated scopes; ValueError names the first malformed one."""
    scopes = []
    for item in raw.split():
        kind, _, rest = item.partition(":")
        name, colon, actions = rest.rpartition(":")
        if not kind or not colon or not name:
            raise ValueError(f"malformed scope {item!r}: expected type:name:actions")
        scopes.append(Scope(kind, name, frozenset(a for a in actions.split(",") if a)))
    return scopes


def _scope_map_entry(action: str) -> tuple[str, str] | None:
    """`repositories/<pattern>/<verb>/<op>` as (pattern, "verb/op"); None for other actions."""
    parts = action.lower().split("/")
    if len(parts) < 4 or parts[0] != "repositories":
        return None
    return "/".join(parts[1:-2]), "/".join(parts[-2:])


def _pattern_matches(pattern: str, repository: str) -> bool:
    """A scope-map repository: exact, `*` (all), or `prefix/*` (a namespace)."""
    if pattern == "*" or pattern == repository:
        return True
    return pattern.endswith("/*") and repository.startswith(pattern[:-1])


def allowed_actions(scope_map: Iterable[str], repository: str) -> set[str]:
    """The registry actions (pull/push/delete) a scope map allows on `repository`."""
    allowed = set()
    for action in scope_map:
        entry = _scope_map_entry(action)
        if entry and entry[1] in SCOPE_MAP_ACTIONS and _pattern_matches(entry[0], repository):
            allowed.add(SCOPE_MAP_ACTIONS[entry[1]])
    return allowed


def grant(scopes: Iterable[Scope], scope_map: Iterable[str], prefix: str) -> list[dict[str, Any]]:
    """The JWT `access` claim: requested ∩ allowed, per repository, named as the backend knows it."""
    scope_map = tuple(scope_map)
    granted: dict[str, set[str]] = {}
    for scope in scopes:
        if scope.type != "repository" or not REPOSITORY.fullmatch(scope.name):
            continue  # registry:catalog:* and friends are never granted to tokens
        requested = ALL_ACTIONS if "*" in scope.actions else scope.actions
        actions = requested & allowed_actions(scope_map, scope.name)
        if actions:
            granted.setdefault(scope.name, set()).update(actions)
    return [{"type": "repository", "name": f"{prefix}/{name}", "actions": sorted(actions)}
            for name, actions in granted.items()]


# -- JWTs ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Signer:
    """Signs the JWTs the backend trusts (its rootcertbundle holds our certificate)."""

    key: RSAPrivateKey
    certificate_der_b64: str  # the `x5c` header: standard base64 of the DER
    issuer: str
    audience: str

    @classmethod
    def load(cls, backend: RegistryConfig) -> Signer:
        key = serialization.load_pem_private_key(backend.signing_key.read_bytes(), password=None)
        if not isinstance(key, RSAPrivateKey):
            raise ValueError(f"{backend.signing_key} is not an RSA key")
        cert = x509.load_pem_x509_certificate(backend.signing_cert.read_bytes())
        der = cert.public_bytes(serialization.Encoding.DER)
        return cls(key, base64.b64encode(der).decode(), backend.issuer, backend.service)

    def issue(self, subject: str, access: list[dict[str, Any]]) -> str:
        """An RS256 JWT for `subject`. Times come from the wall clock: the backend checks them
        against its own, whatever clock offset tests put on the credentials."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.audience, "exp": now + ACCESS_TOKEN_SECONDS,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": [self.certificate_der_b64]})


# -- names between client and backend -------------------------------------------------------
def to_backend_target(target: str, prefix: str) -> str | None:
    """`/v2/<repo>/...?query` as the backend knows it; None for anything that is not a repository path.

    Dot segments are refused: the backend cleans paths, and `..` would step out of the prefix.
    """
    parts = urlsplit(target)
    match = _REPOSITORY_PATH.fullmatch(parts.path)
    if match is None or any(seg in (".", "..") for seg in unquote(match["rest"]).split("/")):
        return None
    query = parts.query
    if "from=" in query:  # cross-repository blob mount: the source is a repository name too
        query = urlencode([(k, f"{prefix}/{v}" if k == "from" else v)
                           for k, v in parse_qsl(query, keep_blank_values=True)])
    return urlunsplit(("", "", f"/v2/{prefix}/{match['name']}/{match['rest']}", query, ""))


def strip_prefix(name: str, prefix: str) -> str:
    return name[len(prefix) + 1:] if name.startswith(prefix + "/") else name


def _client_path(path: str, prefix: str) -> str:
    head = f"/v2/{prefix}/"
    return "/v2/" + path[len(head):] if path.startswith(head) else path


def rewrite_location(value: str, prefix: str, login_server: str) -> str:
    """A backend URL (relative, as `relativeurls` makes them) as an absolute URL of the login server."""
    parts = urlsplit(value)
    return urlunsplit(("https", login_server, _client_path(parts.path, prefix), parts.query, parts.fragment))


def rewrite_link(value: str, prefix: str, login_server: str) -> str:
    """A pagination `Link: <url>; rel="next"` header pointing at the login server."""
    return _LINK_URL.sub(lambda m: f"<{rewrite_location(m[1], prefix, login_server)}>", value)


def _strip_scope_prefix(scope: str, prefix: str) -> str:
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return f"{kind}:{strip_prefix(name, prefix)}:{actions}"


def rewrite_challenge(value: str, prefix: str, login_server: str) -> str:
    """The backend's Bearer challenge, pointed at this login server's realm and service."""
    scheme, _, text = value.partition(" ")
    if scheme.lower() != "bearer":
        return value
    params = dict(_CHALLENGE_PARAM.findall(text))
    params["realm"] = f"https://{login_server}{TOKEN_PATH}"
    params["service"] = login_server
    if "scope" in params:
        params["scope"] = " ".join(_strip_scope_prefix(s, prefix) for s in params["scope"].split())
    return "Bearer " + ",".join(f'{name}="{text}"' for name, text in params.items())


def join_repeated_scopes(target: str) -> str:
    """`?scope=a&scope=b` as `?scope=a b` (the spec allows both), since httpbase keeps one value per name."""
    parts = urlsplit(target)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    scopes = [value for name, value in pairs if name == "scope"]
    if len(scopes) < 2:
        return target
    others = [(name, value) for name, value in pairs if name != "scope"]
    return urlunsplit(("", "", parts.path, urlencode([*others, ("scope", " ".join(scopes))]), ""))


def is_repository_path(target: str) -> bool:
    """Served by the streaming proxy: everything under /v2/ but /v2/ itself."""
    path = urlsplit(target).path
    return path.startswith("/v2/") and len(path) > len("/v2/")


def _registry_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error in the registry API's own shape, which registry clients print."""
    return registry_error(status, code, message, {API_VERSION_HEADER[0]: API_VERSION_HEADER[1], **(headers or {})})


# -- streaming -----------------------------------------------------------------------------
class _ClientGone(Exception):
    """The client's connection failed while we read its body (not an OSError: those mean the backend)."""


def _read_chunked(stream: BinaryIO) -> Iterator[bytes]:
    """Decode a chunked request body as it arrives; ValueError for a malformed chunk size."""
    try:
        while True:
            size = int(stream.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            yield from _read_exactly(stream, size)
            stream.readline(8)  # the CRLF after the chunk
    except OSError as error:
        raise _ClientGone(str(error)) from error


def _read_exactly(stream: BinaryIO, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining:
        try:
            block = stream.read(min(remaining, COPY_BLOCK_BYTES))
        except OSError as error:
            raise _ClientGone(str(error)) from error
        if not block:
            raise _ClientGone("the client closed the connection mid-body")
        remaining -= len(block)
        yield block


def _request_body(handler: BaseHTTPRequestHandler) -> tuple[Iterable[bytes] | None, bool]:
    """(body pieces, chunked?) of the client's request, read lazily."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        return _read_chunked(cast(BinaryIO, handler.rfile)), True
    length = int(handler.headers.get("Content-Length") or 0)
    if length < 0:
        raise ValueError("negative Content-Length")
    return (_read_exactly(cast(BinaryIO, handler.rfile), length) if length else None), False


def _has_body(handler: BaseHTTPRequestHandler) -> bool:
    return bool(handler.headers.get("Transfer-Encoding")) or handler.headers.get("Content-Length", "0") != "0"


def _refuse(handler: BaseHTTPRequestHandler, send: Callable[[Response], None], response: Response) -> None:
    """Answer without reading the request body, so close the connection after it if there is one."""
    if _has_body(handler):
        handler.close_connection = True
    send(response)


def _write_body(handler: BaseHTTPRequestHandler, upstream: HTTPResponse, chunked: bool) -> None:
    while block := upstream.read(COPY_BLOCK_BYTES):
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
    if chunked:
        handler.wfile.write(b"0\r\n\r\n")


def _drop(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)


# -- the service ---------------------------------------------------------------------------
class LoginService(Service):
    """`https://<login server>`: /v2/ challenge, /oauth2/token, and the proxy to the backend."""

    def __init__(self, registry_name: str, login_server: str, lookup: LookupToken, clock: Callable[[], float],
                 backend: RegistryConfig, signer: Signer, refresh: RefreshTokens) -> None:
        super().__init__(f"acr-login-{registry_name.lower()}")
        self.registry_name = registry_name
        self.login_server = login_server
        self.prefix = registry_name.lower()  # repository namespace of this registry in the backend
        self.lookup = lookup
        self.clock = clock
        self.backend = backend
        self.signer = signer
        self.refresh = refresh
        self.replication_delay_seconds = 0.0
        self.denials: Counter[str] = Counter()
        self.route("GET", "/v2", "dataplane.v2")(self._v2)
        self.route("GET", TOKEN_PATH, "dataplane.token")(self._token)
        self.route("POST", TOKEN_PATH, "dataplane.token")(self._token_for_refresh_token)
        self.route("POST", "/oauth2/exchange", "dataplane.exchange")(self._exchange)
        self.fallback = self._unrouted

    def now(self) -> float:
        """The ARM side's clock (credentials are stamped with it) plus this service's own offset."""
        return self.clock() + self.clock_offset_seconds

    # -- /v2/ and /oauth2/token -------------------------------------------------------------
    def _challenge(self, scheme: str) -> Response:
        if scheme == "Basic":
            value = f'Basic realm="{self.login_server}"'
        else:
            value = f'Bearer realm="https://{self.login_server}{TOKEN_PATH}",service="{self.login_server}"'
        return _registry_error(401, "UNAUTHORIZED", UNAUTHORIZED_MESSAGE, {"WWW-Authenticate": value})

    def _v2(self, request: Request) -> Response:
        """ACR's ping: Bearer goes to the backend (which checks the JWT); Basic is refused, as ACR does."""
        authorization = request.headers.get("authorization", "")
        scheme = authorization.partition(" ")[0].lower()
        if scheme == "bearer":
            return self._backend_ping(authorization)
        return self._challenge("Basic" if scheme == "basic" else "Bearer")

    def _backend_ping(self, authorization: str) -> Response:
        connection = HTTPConnection(self.backend.address, timeout=BACKEND_TIMEOUT_SECONDS)
        try:
            connection.request("GET", "/v2/", headers={"Authorization": authorization})
            upstream = connection.getresponse()
            body = upstream.read()
        except OSError as error:
            return _registry_error(502, "UNAVAILABLE", f"the registry backend did not answer: {error}")
        finally:
            connection.close()
        headers = {API_VERSION_HEADER[0]: API_VERSION_HEADER[1],
                   "Content-Type": upstream.getheader("Content-Type", "application/json")}
        if challenge := upstream.getheader("WWW-Authenticate"):
            headers["WWW-Authenticate"] = rewrite_challenge(challenge, self.prefix, self.login_server)
        return Response(upstream.status, body, headers)

    def _token(self, request: Request) -> Response:
        """ACR's token endpoint: Basic `<token>:<password>` in, a JWT for the granted scopes out."""
        return self._issue(request.query, lambda: self._authenticate(request.headers.get("authorization")))

    def _token_for_refresh_token(self, request: Request) -> Response:
        """`POST /oauth2/token`, form `grant_type=refresh_token&service=&scope=&refresh_token=`."""
        fields = form(request)
        if fields is None or fields.get("grant_type") != "refresh_token":
            return registry_error(400, "UNSUPPORTED", "expected a form with grant_type=refresh_token")
        return self._issue(fields, lambda: self._refresh_grant(fields.get("refresh_token", "")))

    def _exchange(self, request: Request) -> Response:
        fields = form(request)
        if fields is None:
            return registry_error(400, "UNSUPPORTED", "expected an application/x-www-form-urlencoded body")
        return self.refresh.exchange(fields)

    def _issue(self, fields: Mapping[str, str], authenticate: Callable[[], Grantee | str]) -> Response:
        """Check `service` and `scope`, authenticate, and answer `{"access_token"}` as ACR does."""
        service = fields.get("service")
        if service is not None and service.lower() != self.login_server.lower():
            return registry_error(400, "UNSUPPORTED", f"service must be {self.login_server}")
        try:
            scopes = parse_scopes(fields.get("scope", ""))
        except ValueError as error:
            return registry_error(400, "UNSUPPORTED", str(error))
        outcome = authenticate()
        if isinstance(outcome, str):
            with self.lock:
                self.denials[outcome] += 1
            return unauthorized()
        return Response(200, {"access_token": self.signer.issue(outcome.name, grant(scopes, outcome.actions,
                                                                                   self.prefix))})

    def _refresh_grant(self, refresh_token: str) -> Grantee | str:
        subject = self.refresh.subject(refresh_token)
        return "bad-refresh-token" if subject is None else Grantee(subject, EVERY_REPOSITORY_ACTION)

    def _authenticate(self, authorization: str | None) -> Grantee | str:
        """Who Basic credentials log in (a token, or a refresh token's principal), or the reason they do not."""
        credentials = parse_basic(authorization)
        if credentials is None:
            return "no-credentials"
        if credentials[0] == NULL_USER:
            return self._refresh_grant(credentials[1])
        token = self.lookup(self.registry_name, credentials[0])
        if token is None:
            return "unknown-token"
        refusal = login_refusal(token, credentials[1], self.now(), self.replication_delay_seconds)
        return refusal or Grantee(token.name, token.actions)

    def _unrouted(self, request: Request) -> Response:
        if is_repository_path(request.path):  # reached only when attach() was not called
            return _registry_error(501, "UNSUPPORTED", "the registry proxy is not attached to this listener: "
                                                       "call LoginService.attach(server)")
        return _registry_error(404, "NOT_FOUND", f"no route for {request.method} {request.path}")

    # -- test controls ----------------------------------------------------------------------
    def control_extension(self, what: str, request: Request) -> Response:
        """`replication-delay` (GET, POST {"seconds": N}) and `denials` (GET, DELETE): why logins failed."""
        if what == "replication-delay":
            if request.method == "POST":
                try:
                    seconds = float(request.json()["seconds"])
                except (ValueError, KeyError, TypeError) as error:
                    return registry_error(400, "UNSUPPORTED", f'expected {{"seconds": <number>}}: {error}')
                if not 0 <= seconds < float("inf"):
                    return registry_error(400, "UNSUPPORTED", "seconds must be a finite number >= 0")
                self.replication_delay_seconds = seconds
            return Response(200, {"seconds": self.replication_delay_seconds})
        if what == "denials":
            with self.lock:
                if request.method == "DELETE":
                    self.denials.clear()
                    return Response(204)
                return Response(200, dict(self.denials))
        return super().control_extension(what, request)

    # -- the streaming proxy ----------------------------------------------------------------
    def attach(self, server: ThreadingHTTPServer) -> None:
        """Serve /v2/<repository>/... of `server` from this service, streaming bodies both ways.

        Call once, after `serve()` bound the listener and before `serve_forever()`.
        """
        base = cast(type[BaseHTTPRequestHandler], server.RequestHandlerClass)
        server.RequestHandlerClass = _proxying_handler(base, self)

    def forward(self, handler: BaseHTTPRequestHandler, send: Callable[[Response], None]) -> None:
        """Count, apply faults, then relay one request to the backend and its answer to the client."""
        try:
            injected = self._count_and_fault("dataplane.proxy")
        except DroppedConnection:
            _drop(handler)
            return
        target = to_backend_target(handler.path, self.prefix)
        if injected is not None:
            _refuse(handler, send, injected)
        elif target is None:
            _refuse(handler, send, _registry_error(404, "NAME_INVALID", "not a repository path of this registry"))
        else:
            self._proxy(handler, send, target)

    def _proxy(self, handler: BaseHTTPRequestHandler, send: Callable[[Response], None], target: str) -> None:
        connection = HTTPConnection(self.backend.address, timeout=BACKEND_TIMEOUT_SECONDS)
        try:
            upstream = self._send_upstream(handler, connection, target)
        except _ClientGone:
            _drop(handler)
            connection.close()
            return
        except ValueError as error:
            _refuse(handler, send, _registry_error(400, "SIZE_INVALID", f"unreadable request framing: {error}"))
            connection.close()
            return
        except OSError as error:
            handler.close_connection = True
            send(_registry_error(502, "UNAVAILABLE", f"the registry backend did not answer: {error}"))
            connection.close()
            return
        try:
            self._relay(handler, upstream)
        except OSError:
            handler.close_connection = True  # the client or the backend went away mid-body
        finally:
            connection.close()

    def _send_upstream(self, handler: BaseHTTPRequestHandler, connection: HTTPConnection,
                       target: str) -> HTTPResponse:
        """Send the request with its body streamed.

        Raises ValueError for bad framing, _ClientGone when the client fails mid-body, OSError for the backend.
        """
        body, chunked = _request_body(handler)
        connection.putrequest(handler.command, target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", self.backend.address)
        for name, value in handler.headers.items():
            if name.lower() not in _NOT_FORWARDED:
                connection.putheader(name, value)
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
        elif body is not None or handler.command in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", handler.headers.get("Content-Length") or "0")
        try:
            connection.endheaders(body, encode_chunked=chunked)
        except OSError:
            # The backend may answer (say 401) and close before reading the whole body: relay that
            # answer if there is one. The client's body is not fully read, so its connection closes.
            handler.close_connection = True
        return connection.getresponse()

    def _relay(self, handler: BaseHTTPRequestHandler, upstream: HTTPResponse) -> None:
        body_allowed = handler.command != "HEAD" and upstream.status not in (204, 304)
        rewritten = self._rewritten_body(handler, upstream) if body_allowed else None
        chunked = body_allowed and rewritten is None and upstream.getheader("Content-Length") is None
        handler.send_response_only(upstream.status, upstream.reason)
        for name, value in self._client_headers(upstream):
            if name.lower() != "content-length" or rewritten is None:
                handler.send_header(name, value)
        if rewritten is not None:
            handler.send_header("Content-Length", str(len(rewritten)))
        elif chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        if rewritten is not None:
            handler.wfile.write(rewritten)
        elif body_allowed:
            _write_body(handler, upstream, chunked)

    def _client_headers(self, upstream: HTTPResponse) -> Iterator[tuple[str, str]]:
        """The backend's headers minus hop-by-hop ones, with URLs and challenges pointing here."""
        rewrites: dict[str, Callable[[str, str, str], str]] = {
            "location": rewrite_location, "link": rewrite_link, "www-authenticate": rewrite_challenge}
        for name, value in upstream.getheaders():
            lower = name.lower()
            if lower in _HOP_BY_HOP:
                continue
            rewrite = rewrites.get(lower)
            yield name, rewrite(value, self.prefix, self.login_server) if rewrite else value

    def _rewritten_body(self, handler: BaseHTTPRequestHandler, upstream: HTTPResponse) -> bytes | None:
        """A tag list names its repository: give the client back its own name. Other bodies stream as is."""
        if upstream.status != 200 or not urlsplit(handler.path).path.endswith("/tags/list"):
            return None
        raw = upstream.read(MAX_REWRITTEN_BODY_BYTES)
        try:
            document = json.loads(raw)
        except ValueError:
            return raw
        if isinstance(document, dict) and isinstance(document.get("name"), str):
            document["name"] = strip_prefix(document["name"], self.prefix)
        return json.dumps(document).encode()


def _proxying_handler(base: type[BaseHTTPRequestHandler], service: LoginService) -> type[BaseHTTPRequestHandler]:
    """`base` (httpbase's handler) with /v2/<repository>/... sent to the service's streaming proxy."""

    class _ProxyingHandler(base):  # type: ignore[misc, valid-type]  # base is only known at run time
        path: str
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response.
        disable_nagle_algorithm = True

        def _route(self) -> None:
            if is_repository_path(self.path):
                service.forward(self, self._send)
                return
            if urlsplit(self.path).path == TOKEN_PATH:
                self.path = join_repeated_scopes(self.path)
            self._handle()

        do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _route

    return _ProxyingHandler


# -- entry points --------------------------------------------------------------------------
def build_login_service(state_dir: Path, registry_name: str, login_server: str, lookup: LookupToken,
                        now: Callable[[], float]) -> LoginService:
    """The login service of `registry_name` at `login_server` (`127.0.0.1:<port>`), backed by the stack's
    docker-registry. The caller serves it over HTTPS and must call `attach(server)` for the proxy."""
    backend = load_backend(state_dir)
    signer = Signer.load(backend)
    entra_key = bearer.load_key(state_dir) if (state_dir / bearer.KEY_FILE).exists() else None
    return LoginService(registry_name, login_server, lookup, now, backend, signer,
                        RefreshTokens(signer.key, login_server, entra_key))


def serve_login(service: LoginService, port_file: Path, cert: Path | None = None, key: Path | None = None,
                port: int = 0) -> ThreadingHTTPServer:
    """`httpbase.serve` plus the streaming proxy: the caller runs `serve_forever()`."""
    server = serve(service, port_file, cert, key, port)
    service.attach(server)
    return server
