"""The HTTP API, framework-free: (operation, method, route params, query, headers, body) -> (status, JSON).

Why framework-free: `function_app.py` only adapts `func.HttpRequest` to :class:`ApiRequest`, so
the same code answers behind the Functions host, behind `devstack.functions_host`, and in unit
tests without either. The routes and their status codes are documented in `docs/http-api.md`
and in the OpenAPI document this module serves (`rotator.entrypoints.openapi`).

Rules every reply follows:
- JSON bodies; errors are always ``{"error": {"code", "message"}}`` with a message safe to show.
- Bad input is a 4xx, never a 5xx: names are checked against ACR's naming rules before any
  Azure call, bodies are bounded (64 KiB) and typed.
- `GET /api/tokens` answers from the last scan's stored plan (paged, filtered by registry, saying when it
  was made), never by planning every token per request; `GET /api/health` from its summary and the
  poison queue's length (200 healthy, 503 with reasons).
- Rotations and revokes are synchronous (200 with the result): one token takes seconds; a rotation may
  instead be queued (`{"enqueue": true}`: 202 and the token's URL in `Location`). Every request is
  bounded by HTTP_TIME_BOUND_SECONDS (200 s: Azure's front end cuts a reply not started within 230 s), the
  rotation inside it, waiting for a lock included, by ROTATOR_RUN_TIMEOUT_SECONDS (docs/http-api.md shows
  the arithmetic). A caller learns the outcome without polling. A forced rotation that another run's
  rotation satisfied answers 200 `skipped` with code `coalesced` and that version; one the overlap window
  forbids yet answers 409 `OverlapWindow` with Retry-After (seconds until the standby becomes rotatable).
- 5xx only for the app itself: 500 for invalid settings (a misconfigured app; the detail is
  logged, not returned) or a bug, 502/503 when Azure failed (503 with Retry-After when a
  retry could succeed).
- Nothing here ever holds a password or a private key: results and status rows carry names,
  slots, dates and reasons only, and an uploaded PEM is never echoed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from azure.core.exceptions import AzureError

from rotator.azure import bounds
from rotator.azure.errors import describe, is_transient
from rotator.core.certificates import MAX_CERTIFICATE_INPUT_BYTES
from rotator.core.model import PASSWORD_SLOTS, PasswordName, TokenState, password_name
from rotator.core.names import valid_registry_name, valid_token_name
from rotator.core.resource_ids import RegistryId
from rotator.core.results import Result
from rotator.core.scan_record import DEFAULT_PAGE, MAX_PAGE, RecordError, ScanReplaced, ScanSummary, page
from rotator.core.work import password_item
from rotator.logs import log_event
from rotator.protocols import password_rotation
from rotator.protocols.engine import Engine
from rotator.settings import MAX_RUN_TIMEOUT_SECONDS

MAX_BODY_BYTES = MAX_CERTIFICATE_INPUT_BYTES  # 64 KiB: a certificate is far smaller, a JSON option object too
PEM_MEDIA_TYPES = ("application/x-pem-file", "text/plain")
RETRY_AFTER_SECONDS = 30  # a rotation holding the lease is usually done well within this
HTTP_TIME_BOUND_SECONDS = MAX_RUN_TIMEOUT_SECONDS  # no Azure call of a request starts or lasts beyond it
_JSON_HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
_ROTATE_OPTIONS = {"force": bool, "dryRun": bool, "enqueue": bool}
_REVOKE_OPTIONS = {"slot": str, "dryRun": bool}
logger = logging.getLogger("rotator.http")


@dataclass(frozen=True)
class ApiRequest:
    """What the API needs from an HTTP request; header names are lowercase."""

    method: str
    route_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def build(cls, method: str, route_params: Mapping[str, str], query: Mapping[str, str],
              headers: Mapping[str, str], body: bytes | None) -> ApiRequest:
        return cls(method.upper(), dict(route_params), dict(query),
                   {name.lower(): value for name, value in headers.items()}, body or b"")


@dataclass(frozen=True)
class ApiResponse:
    status: int
    document: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        return json.dumps(self.document, ensure_ascii=False, allow_nan=False).encode("utf-8")

    def all_headers(self) -> dict[str, str]:
        return {**_JSON_HEADERS, **self.headers}


class ApiError(Exception):
    """An error reply: status, a stable code and a message safe to show to the caller."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})

    def response(self) -> ApiResponse:
        return ApiResponse(self.status, {"error": {"code": self.code, "message": self.message}}, self.headers)


class _Context:
    """Builds the engine only when an operation needs it; invalid settings become a safe 500."""

    def __init__(self, provider: Callable[[], Engine]) -> None:
        self._provider = provider

    @property
    def provider(self) -> Callable[[], Engine]:
        """The raw provider, for the doctor: it reports invalid settings as a finding, not a 500."""
        return self._provider

    def engine(self) -> Engine:
        try:
            return self._provider()
        except ValueError as error:  # SettingsError, or no storage for the locks
            log_event("misconfigured", level=logging.ERROR, reason=str(error))
            raise ApiError(500, "Misconfigured", "the function app's settings are invalid; its log names the "
                                                 "setting to fix") from None


Handler = Callable[[ApiRequest, _Context], ApiResponse]


def handle(operation: str, request: ApiRequest, engine_provider: Callable[[], Engine]) -> ApiResponse:
    """Answer one request for `operation` (an operationId of the OpenAPI document)."""
    method, handler = OPERATIONS[operation]
    try:
        if request.method != method:
            raise ApiError(405, "MethodNotAllowed", f"{operation} takes {method}", {"Allow": method})
        with bounds.deadline(HTTP_TIME_BOUND_SECONDS):
            response = handler(request, _Context(engine_provider))
    except ApiError as error:
        response = error.response()
    except AzureError as error:
        response = _azure_failure(error).response()
    except Exception:  # a bug must not leak details; the host would answer 500 anyway
        logger.exception("unexpected error in %s", operation)
        response = ApiError(500, "InternalError", "unexpected error; see the function app's log").response()
    params = request.route_params
    log_event("http", operation=operation, status=response.status, registry=params.get("registry"),
              token=params.get("token"))
    return response


def _azure_failure(error: AzureError) -> ApiError:
    if is_transient(error):
        return ApiError(503, "TemporarilyUnavailable", f"{describe(error)}; retry later",
                        {"Retry-After": str(RETRY_AFTER_SECONDS)})
    return ApiError(502, "UpstreamFailed", describe(error))


# --- operations ---------------------------------------------------------------------------------------


def list_tokens(request: ApiRequest, context: _Context) -> ApiResponse:
    """The managed tokens as the last scan planned them (stored record): `?registry=&top=&skipToken=`."""
    registry = request.query.get("registry")
    if registry is not None and not valid_registry_name(registry):
        raise ApiError(400, "InvalidQuery", "registry must be an ACR registry name: 5-50 letters and digits")
    top = _integer_query(request, "top", DEFAULT_PAGE, 1, MAX_PAGE)
    skip_token = request.query.get("skipToken")
    record = _stored(lambda: context.engine().scans.load())
    if record is None:
        return ApiResponse(200, {"scan": None, "tokens": [], "failures": [], "orphaned": [], "nextLink": None,
                                 "note": "no scan has completed yet: the timer's first run (or `python -m rotator "
                                         "scan`) stores the plan this lists"})
    try:
        found = page(record, registry, top, skip_token)
    except ScanReplaced as replaced:
        raise ApiError(409, "ScanReplaced", str(replaced)) from None
    except RecordError as error:
        raise ApiError(400, "InvalidQuery", str(error)) from None
    next_link = None
    if found.next_skip_token is not None:
        query = {**({"registry": registry} if registry else {}), "top": str(top), "skipToken": found.next_skip_token}
        next_link = f"/api/tokens?{urlencode(query)}"
    return ApiResponse(200, {"scan": scan_summary(record.summary), "tokens": found.tokens,
                             "failures": found.failures, "orphaned": found.orphaned, "nextLink": next_link})


def scan_summary(summary: ScanSummary) -> dict[str, Any]:
    """When the stored plan was made, by what, and what it found."""
    document = summary.to_json()
    document.pop("schema", None)
    return document


def _stored(load: Callable[[], Any]) -> Any:
    try:
        return load()
    except RecordError as error:
        log_event("scan-record-unreadable", logging.ERROR, reason=str(error))
        raise ApiError(500, "StoredPlanUnreadable", "the stored scan record cannot be read; the next scan replaces "
                                                    "it") from None


def get_token(request: ApiRequest, context: _Context) -> ApiResponse:
    from rotator.entrypoints.render import status_rows
    from rotator.protocols.publishing import read_facts
    from rotator.protocols.scan import PlannedToken

    engine, registry, login_server, token_name = _target(request, context)
    token = _existing_token(engine, registry, login_server, token_name)
    secret = engine.vault.current(registry.name, token.name)
    facts = read_facts(engine, token, secret)
    return ApiResponse(200, status_rows([PlannedToken(token, secret, engine.plan(token, secret, facts=facts))])[0])


def rotate_token(request: ApiRequest, context: _Context) -> ApiResponse:
    """Rotate now if due (or forced); `dryRun` only plans (at once, even with `enqueue`: nothing to queue);
    `enqueue` queues the run instead (202)."""
    options = _options(request, _ROTATE_OPTIONS, '{"force": false, "dryRun": false, "enqueue": false}')
    force, dry_run = bool(options.get("force", False)), bool(options.get("dryRun", False))
    engine, registry, login_server, token_name = _target(request, context)
    _existing_token(engine, registry, login_server, token_name)
    if options.get("enqueue") and not dry_run:
        item = password_item(registry, token_name, "http", engine.clock(), force=force)
        engine.queue.send(item.encode())
        location = f"/api/tokens/{registry.name}/{token_name}"
        log_event("queued", registry=registry.name, token=token_name, source="http", force=force)
        return ApiResponse(202, {"registry": registry.name, "token": token_name, "action": "queued",
                                 "force": force, "requested_at": item.requested_at.isoformat(),
                                 "queue": engine.queue.name, "location": location}, {"Location": location})
    result = password_rotation.rotate(engine, registry, login_server, token_name, force=force, dry_run=dry_run)
    return _result_response(result, refused=(409, "Refused"))


def revoke_token(request: ApiRequest, context: _Context) -> ApiResponse:
    """Leaked credential: publish a fresh password and remove the revoked one (`slot`, default the current one)."""
    from rotator.protocols.revoke import revoke

    options = _options(request, _REVOKE_OPTIONS, '{"slot": "password1", "dryRun": false}')
    slot: PasswordName | None = None
    if "slot" in options:
        slot = password_name(options["slot"])
        if slot is None:
            raise ApiError(400, "InvalidBody", f"slot must be one of {', '.join(PASSWORD_SLOTS)}")
    engine, registry, login_server, token_name = _target(request, context)
    _existing_token(engine, registry, login_server, token_name)
    result = revoke(engine, registry, login_server, token_name, slot=slot, dry_run=bool(options.get("dryRun", False)))
    return _result_response(result, refused=(409, "Refused"))


def put_certificate(request: ApiRequest, context: _Context) -> ApiResponse:
    """Put an uploaded PEM certificate on the token (validated first; a refusal changes nothing)."""
    from rotator.protocols.certificate_rotation import push_certificate

    media_type = _media_type(request)
    if media_type not in PEM_MEDIA_TYPES:
        raise ApiError(415, "UnsupportedMediaType",
                       f"send the PEM certificate as {' or '.join(PEM_MEDIA_TYPES)}")
    _check_size(request)
    dry_run = _boolean_query(request, "dryRun")
    engine, registry, login_server, token_name = _target(request, context)
    _existing_token(engine, registry, login_server, token_name)
    result = push_certificate(engine, registry, login_server, token_name, request.body, dry_run=dry_run)
    return _result_response(result, refused=(422, "CertificateRefused"))


def doctor(request: ApiRequest, context: _Context) -> ApiResponse:
    """The preflight report (rotator.entrypoints.doctor): 200 whatever it finds; `ok` says if all is in place."""
    from rotator.entrypoints.doctor import diagnose

    return ApiResponse(200, diagnose(context.provider).to_json())


def health(request: ApiRequest, context: _Context) -> ApiResponse:
    """200 when the rotator is doing its job, 503 with reasons (rotator.core.health); two Storage calls.

    A part that cannot be read (Storage down, a damaged record) is a reason too: the answer keeps its shape."""
    from rotator.core.health import Reason, evaluate

    engine = context.engine()
    unreadable: list[str] = []
    summary: ScanSummary | None = None
    poison = 0
    try:
        summary = engine.scans.summary()
    except AzureError as error:
        unreadable.append(f"the scan record: {describe(error)}")
    except RecordError as error:
        unreadable.append(str(error))
    try:
        poison = engine.queue.poison_count()
    except AzureError as error:
        unreadable.append(f"the poison queue: {describe(error)}")
    problems = [Reason("unreadable", f"could not read {what}") for what in unreadable]
    verdict = evaluate(summary, poison, engine.queue.poison_name, engine.clock(), engine.settings.expiry_alert,
                       engine.settings.schedule, problems)
    return ApiResponse(200 if verdict.healthy else 503, verdict.document)


def openapi(request: ApiRequest, context: _Context) -> ApiResponse:
    from rotator.entrypoints.openapi import app_service_auth_enabled, document

    return ApiResponse(200, document(entra_id=app_service_auth_enabled(os.environ)))


OPERATIONS: dict[str, tuple[str, Handler]] = {
    "list_tokens": ("GET", list_tokens),
    "get_token": ("GET", get_token),
    "rotate_token": ("POST", rotate_token),
    "revoke_token": ("POST", revoke_token),
    "put_certificate": ("PUT", put_certificate),
    "doctor": ("GET", doctor),
    "health": ("GET", health),
    "openapi": ("GET", openapi),
}


# --- pieces -------------------------------------------------------------------------------------------


def _target(request: ApiRequest, context: _Context) -> tuple[Engine, RegistryId, str, str]:
    """The managed registry and token the route names; 400 for impossible names, 404 for unmanaged ones."""
    from rotator.protocols.targets import NotManaged, TokenExcluded, managed_token

    registry_name = request.route_params.get("registry", "")
    token_name = request.route_params.get("token", "")
    if not valid_registry_name(registry_name):
        raise ApiError(400, "InvalidName", "registry must be an ACR registry name: 5-50 letters and digits")
    if not valid_token_name(token_name):
        raise ApiError(400, "InvalidName", "token must be an ACR token name: 5-50 letters, digits and dashes")
    engine = context.engine()
    try:
        registry, login_server = managed_token(engine, registry_name, token_name)
    except TokenExcluded as excluded:
        raise ApiError(404, "TokenNotFound", str(excluded)) from None
    except NotManaged as not_managed:
        raise ApiError(404, "RegistryNotFound", str(not_managed)) from None
    return engine, registry, login_server, token_name


def _existing_token(engine: Engine, registry: RegistryId, login_server: str, token_name: str) -> TokenState:
    """The token as ARM reads it; 404 when the registry has no such token (checked before acting on it)."""
    from rotator.protocols.targets import TokenNotFound, existing_token

    try:
        return existing_token(engine, registry, login_server, token_name)
    except TokenNotFound as error:
        raise ApiError(404, "TokenNotFound", str(error)) from None


def _result_response(result: Result, refused: tuple[int, str]) -> ApiResponse:
    if result.action == "busy":
        raise ApiError(409, "Busy", result.reason, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    if result.action == "waiting":
        raise ApiError(409, "OverlapWindow", result.reason, {"Retry-After": str(_seconds_until(result.retry_at))})
    if result.action == "refused":
        raise ApiError(*refused, result.reason)
    if result.action == "failed":
        if result.transient:
            raise ApiError(503, "TemporarilyUnavailable", result.reason, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        raise ApiError(502, "UpstreamFailed", result.reason)
    return ApiResponse(200, result.to_json())


def _check_size(request: ApiRequest) -> None:
    if len(request.body) > MAX_BODY_BYTES:
        raise ApiError(413, "PayloadTooLarge", f"the body is larger than {MAX_BODY_BYTES // 1024} KiB")


def _media_type(request: ApiRequest) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _seconds_until(moment: datetime | None) -> int:
    if moment is None:
        return RETRY_AFTER_SECONDS
    return max(1, int((moment - datetime.now(UTC)).total_seconds()) + 1)


def _options(request: ApiRequest, allowed: Mapping[str, type], example: str) -> dict[str, Any]:
    """A JSON object of optional fields of the given types; an empty body means no options."""
    _check_size(request)
    if not request.body.strip():
        return {}
    media_type = _media_type(request)
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ApiError(415, "UnsupportedMediaType", "send the options as application/json")
    try:
        options = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "InvalidJson", "the body is not valid UTF-8 JSON") from None
    if not isinstance(options, dict):
        raise ApiError(400, "InvalidBody", f"the body must be a JSON object like {example}")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ApiError(400, "InvalidBody", f"unknown field(s): {', '.join(repr(k[:40]) for k in unknown[:5])}; "
                                           f"allowed: {', '.join(allowed)}")
    for name, kind in allowed.items():
        if name in options and not isinstance(options[name], kind):
            raise ApiError(400, "InvalidBody", f"{name} must be {'true or false' if kind is bool else 'a string'}")
    return dict(options)


def _integer_query(request: ApiRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "InvalidQuery", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _boolean_query(request: ApiRequest, name: str) -> bool:
    raw = request.query.get(name)
    if raw is None or raw.lower() == "false":
        return False
    if raw.lower() == "true":
        return True
    raise ApiError(400, "InvalidQuery", f"{name} must be true or false")
