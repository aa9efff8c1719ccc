"""The OpenAPI 3.0 document of the HTTP API, served at `GET /api/openapi.json`.

Written as Python so the name patterns and limits come from the code that enforces them
(`rotator.core.names`, `rotator.entrypoints.http_api`), and the action enums from `rotator.core.results`: the
document cannot drift from what the API does. Tests run schemathesis against it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, get_args

from rotator.core.model import PASSWORD_SLOTS
from rotator.core.names import REGISTRY_NAME_PATTERN, TOKEN_NAME_PATTERN
from rotator.core.results import Action
from rotator.core.scan_record import DEFAULT_PAGE, MAX_PAGE
from rotator.entrypoints.http_api import MAX_BODY_BYTES, PEM_MEDIA_TYPES, RETRY_AFTER_SECONDS
from rotator.entrypoints.render import STATUS_ACTIONS

_REF = "#/components"
_NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}
_NULLABLE_TEXT = {"type": "string", "nullable": True}
_NULLABLE_DAYS = {"type": "number", "nullable": True}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"{_REF}/{kind}/{name}"}


def _error(description: str, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {"application/json": {"schema": _ref("schemas", "Error")}}}
    if retry_after:
        response["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                               "schema": {"type": "integer", "example": RETRY_AFTER_SECONDS}}}
    return response


def _ok(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("schemas", schema)}}}


def _responses(ok: dict[str, Any], *statuses: str) -> dict[str, Any]:
    """Every operation can answer 401 (the host: no or wrong key), 500 (misconfigured app), 502/503 (Azure)."""
    return {"200": ok, **{status: _ref("responses", status) for status in sorted({*statuses, "401", "500", "502",
                                                                                     "503"})}}


_TOKEN_PATH_PARAMETERS = [_ref("parameters", "registry"), _ref("parameters", "token")]


def _token_action(operation_id: str, summary: str, description: str, options: str, done: str,
                  queued: bool = False) -> dict[str, Any]:
    """A synchronous POST on one token taking optional JSON options and answering with a Result (or, `queued`,
    202 when the options ask for the run to be queued)."""
    responses = _responses(_ok("Result", f"What was done ({done})."), "400", "404", "409", "413", "415")
    if queued:
        responses["202"] = {**_ok("Queued", "Queued (`enqueue`): the queue trigger runs it."),
                            "headers": {"Location": {"description": "The token's GET path.",
                                                     "schema": {"type": "string"}}}}
    return {
        "parameters": _TOKEN_PATH_PARAMETERS,
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("schemas", options)}}},
            "responses": responses,
        },
    }

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string", "example": "TokenNotFound"},
                           "message": {"type": "string"}},
        }},
    },
    "Result": {
        "type": "object",
        "description": "What one run did to one token. Never a password.",
        "required": ["registry", "token", "action", "reason", "slot", "expiry", "version", "duration_ms",
                     "transient", "code", "retry_at"],
        "properties": {
            "registry": {"type": "string"},
            "token": {"type": "string"},
            "action": {"type": "string", "enum": list(get_args(Action))},
            "reason": {"type": "string"},
            "slot": {**_NULLABLE_TEXT, "description": "password1/password2 or certificate1/certificate2"},
            "expiry": {**_NULLABLE_TIME, "description": "expiry of the new password or certificate"},
            "version": {**_NULLABLE_TEXT, "description": "the Key Vault secret version published"},
            "duration_ms": {"type": "integer", "nullable": True},
            "transient": {"type": "boolean", "description": "a later retry could succeed"},
            "code": {**_NULLABLE_TEXT, "description": "stable cause: coalesced, overlap, drift, superseded, "
                                                      "soft-deleted-secret, foreign-secret, companion-conflict, "
                                                      "orphaned, ..."},
            "retry_at": {**_NULLABLE_TIME, "description": "waiting: when the same request can succeed"},
        },
    },
    "Certificate": {
        "type": "object",
        "required": ["name", "thumbprint", "expiry"],
        "properties": {"name": {"type": "string"}, "thumbprint": _NULLABLE_TEXT, "expiry": _NULLABLE_TIME,
                       "days_to_expiry": _NULLABLE_DAYS},
    },
    "TokenStatus": {
        "type": "object",
        "description": "A managed token: slots, expiries, next due date, planned action. Never a password.",
        "required": ["registry", "token", "enabled", "active", "action", "code", "slot", "reason", "next_due",
                     "certificates", "password1_expiry", "password2_expiry"],
        "properties": {
            "registry": {"type": "string"},
            "token": {"type": "string"},
            "enabled": {"type": "boolean"},
            "active": {**_NULLABLE_TEXT, "description": "the slot Key Vault's current version holds"},
            "action": {"type": "string", "enum": list(STATUS_ACTIONS)},
            "code": {**_NULLABLE_TEXT, "description": "stable cause (drift, overlap, soft-deleted-secret, ...)"},
            "slot": {**_NULLABLE_TEXT, "description": "the slot the next rotation regenerates"},
            "reason": {"type": "string"},
            "next_due": {**_NULLABLE_TIME, "description": "when it becomes due (skipped) or rotatable (waiting)"},
            "certificates": {"type": "array", "items": _ref("schemas", "Certificate")},
            "password1_expiry": _NULLABLE_TIME,
            "password2_expiry": _NULLABLE_TIME,
            "expiry": {**_NULLABLE_TIME, "description": "the active password's expiry"},
            "days_to_expiry": {**_NULLABLE_DAYS, "description": "days until the active password expires"},
            "certificate_days_to_expiry": {**_NULLABLE_DAYS, "description": "days until the nearest certificate "
                                                                            "expires"},
        },
    },
    "Expiry": {
        "type": "object",
        "description": "A managed credential and when it expires.",
        "required": ["registry", "token", "slot", "expires_at"],
        "properties": {"registry": {"type": "string"}, "token": {"type": "string"},
                       "slot": {"type": "string", "description": "password1/password2 or certificate1/certificate2"},
                       "expires_at": {"type": "string", "format": "date-time"}},
    },
    "ScanSummary": {
        "type": "object",
        "description": "The scan whose stored plan this is: when, by what, and its results counted by action.",
        "required": ["started_at", "completed_at", "source", "mode", "tokens", "outcomes", "nearest_password",
                     "nearest_certificate"],
        "properties": {
            "started_at": {"type": "string", "format": "date-time"},
            "completed_at": {"type": "string", "format": "date-time"},
            "source": {"type": "string", "enum": ["timer", "cli"]},
            "mode": {"type": "string", "enum": ["enqueue", "inline"],
                     "description": "enqueue: due tokens were queued (the timer); inline: rotated by the scan"},
            "tokens": {"type": "integer", "description": "managed tokens planned"},
            "outcomes": {"type": "object", "additionalProperties": {"type": "integer"},
                         "description": "results by action (queued, skipped, waiting, refused, rotated, ...)"},
            "nearest_password": {**_ref("schemas", "Expiry"), "nullable": True},
            "nearest_certificate": {**_ref("schemas", "Expiry"), "nullable": True},
        },
    },
    "TokenList": {
        "type": "object",
        "description": "A page of the last scan's stored plan (not a fresh plan: `scan` says when it was made; "
                       "`GET /tokens/{registry}/{token}` plans one token afresh).",
        "required": ["scan", "tokens", "failures", "orphaned", "nextLink"],
        "properties": {
            "scan": {**_ref("schemas", "ScanSummary"), "nullable": True,
                     "description": "null before the first scan has completed"},
            "nextLink": {**_NULLABLE_TEXT, "description": "the next page's path and query, null on the last page"},
            "note": {"type": "string", "description": "before the first scan: why the list is empty"},
            "tokens": {"type": "array", "items": _ref("schemas", "TokenStatus")},
            "failures": {"type": "array", "items": _ref("schemas", "Result"),
                         "description": "registries or scopes that could not be read"},
            "orphaned": {"type": "array", "items": _ref("schemas", "Result"),
                         "description": "managed secrets whose token no longer exists in a listed registry"},
        },
    },
    "Queued": {
        "type": "object",
        "description": "The rotation was put on the rotation queue; `location` shows the token's state.",
        "required": ["registry", "token", "action", "force", "requested_at", "queue", "location"],
        "properties": {
            "registry": {"type": "string"}, "token": {"type": "string"},
            "action": {"type": "string", "enum": ["queued"]},
            "force": {"type": "boolean"},
            "requested_at": {"type": "string", "format": "date-time"},
            "queue": {"type": "string", "description": "ROTATOR_QUEUE"},
            "location": {"type": "string", "description": "the token's GET path (also the Location header)"},
        },
    },
    "HealthReason": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string", "enum": ["no-scan", "scan-overdue", "expiring", "poisoned",
                                                           "unreadable"]},
                       "message": {"type": "string"}},
    },
    "Health": {
        "type": "object",
        "required": ["status", "reasons", "checked_at", "last_scan", "nearest_expiry", "poison", "expiry_alert_days"],
        "properties": {
            "status": {"type": "string", "enum": ["healthy", "unhealthy"]},
            "reasons": {"type": "array", "items": _ref("schemas", "HealthReason")},
            "checked_at": {"type": "string", "format": "date-time"},
            "last_scan": {"type": "object", "nullable": True,
                          "description": "the last completed scan: times, source, mode, tokens, outcomes"},
            "nearest_expiry": {
                "type": "object", "required": ["password", "certificate"],
                "properties": {"password": {"type": "object", "nullable": True},
                               "certificate": {"type": "object", "nullable": True}}},
            "poison": {"type": "object", "required": ["queue", "count"],
                       "properties": {"queue": {"type": "string"}, "count": {"type": "integer"}}},
            "expiry_alert_days": {"type": "integer", "description": "ROTATOR_EXPIRY_ALERT_DAYS"},
        },
    },
    "DoctorCheck": {
        "type": "object",
        "required": ["check", "status", "detail", "fix"],
        "properties": {
            "check": {"type": "string", "example": "Key Vault secrets writable"},
            "status": {"type": "string", "enum": ["ok", "fail", "not-checked"]},
            "detail": {"type": "string", "description": "what was found; an RBAC refusal names the missing action"},
            "fix": {"type": "string", "description": "for a failure: the role, and the Bicep line granting it"},
        },
    },
    "DoctorReport": {
        "type": "object",
        "required": ["ok", "checks"],
        "properties": {
            "ok": {"type": "boolean", "description": "false when any check failed"},
            "checks": {"type": "array", "items": _ref("schemas", "DoctorCheck")},
        },
    },
    "RotateOptions": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "force": {"type": "boolean", "default": False,
                      "description": "rotate even when not due (the overlap window still applies)"},
            "dryRun": {"type": "boolean", "default": False, "description": "plan only; write nothing"},
            "enqueue": {"type": "boolean", "default": False,
                        "description": "put the rotation on the rotation queue and answer 202 at once; the queue "
                                       "trigger runs it, Location names the token to look at. A dryRun is "
                                       "answered at once all the same (200): nothing is queued"},
        },
    },
    "RevokeOptions": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "slot": {"type": "string", "enum": list(PASSWORD_SLOTS),
                     "description": "revoke only this slot; default: the credential current in Key Vault"},
            "dryRun": {"type": "boolean", "default": False, "description": "plan only; write nothing"},
        },
    },
}

_RESPONSES: dict[str, Any] = {
    "400": _error("Invalid input: a name ACR cannot have, malformed JSON, an unknown option."),
    "401": {"description": "No or wrong function key (answered by the Functions host, without a body); with Entra "
                   "ID authentication on, also no or an invalid bearer token (answered by App Service)."},
    "404": _error("The registry or token does not exist or is not managed by this app."),
    "409": _error("ScanReplaced (GET /tokens: a newer scan replaced the stored plan since skipToken was given), "
                  "Busy (another run holds the token's lock; see Retry-After), OverlapWindow (the credential the "
                  "standby slot holds was current in Key Vault less than ROTATOR_MIN_OVERLAP_HOURS ago; Retry-After "
                  "says when it becomes rotatable) or Refused by the policy (the token's Key Vault secret or its "
                  "companion is not the rotator's, or is soft-deleted).", retry_after=True),
    "413": _error(f"The body is larger than {MAX_BODY_BYTES // 1024} KiB."),
    "415": _error("Wrong Content-Type."),
    "422": _error("The certificate was refused (private key, expired, weak key or signature, not exactly one "
                  "certificate...). The message says why; the input is never echoed."),
    "500": _error("The function app is misconfigured (invalid settings; its log names the setting)."),
    "502": _error("Azure refused or failed a call the app made."),
    "503": _error("Azure is throttling or unavailable, or the new password did not log in in time: retry later.",
                  retry_after=True),
}

_PARAMETERS: dict[str, Any] = {
    "registry": {"name": "registry", "in": "path", "required": True,
                 "description": "Registry name, one of those ROTATOR_REGISTRIES names or contains.",
                 "schema": {"type": "string", "pattern": REGISTRY_NAME_PATTERN, "minLength": 5, "maxLength": 50,
                            "example": "contosoregistry"}},
    "token": {"name": "token", "in": "path", "required": True, "description": "Token name.",
              "schema": {"type": "string", "pattern": TOKEN_NAME_PATTERN, "minLength": 5, "maxLength": 50,
                         "example": "ci-pull"}},
}

_PATHS: dict[str, Any] = {
    "/tokens": {"get": {
        "operationId": "list_tokens",
        "summary": "Every managed token with its slots, expiries, next due date and planned action, as the last "
                   "scan planned them.",
        "description": "Served from the plan the last scan stored (`scan.completed_at` says when), a page at a "
                       "time; nothing is planned per request. Before the first scan `scan` is null and the list "
                       "empty. Failures and orphans come with the first page.",
        "parameters": [
            {"name": "registry", "in": "query", "required": False, "description": "Only this registry's tokens.",
             "schema": {"type": "string", "pattern": REGISTRY_NAME_PATTERN, "minLength": 5, "maxLength": 50}},
            {"name": "top", "in": "query", "required": False, "description": "Tokens per page.",
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}},
            {"name": "skipToken", "in": "query", "required": False,
             "description": "Where the previous page ended (from its nextLink).", "schema": {"type": "string"}},
        ],
        "responses": _responses(_ok("TokenList", "A page of the managed tokens."), "400", "409"),
    }},
    "/tokens/{registry}/{token}": {
        "parameters": _TOKEN_PATH_PARAMETERS,
        "get": {
            "operationId": "get_token",
            "summary": "One managed token.",
            "responses": _responses(_ok("TokenStatus", "The token."), "400", "404"),
        },
    },
    "/tokens/{registry}/{token}/rotate": _token_action(
        "rotate_token", "Rotate the token's standby password now if due, or when forced. Synchronous.",
        "Runs the whole protocol (lock, generate the standby slot, verify by logging in, publish to Key Vault) and "
        "answers with the result. An empty body means `{\"force\": false, \"dryRun\": false}`. With "
        "`{\"enqueue\": true}` the run is put on the rotation queue instead: 202, and `Location` names the token.",
        "RotateOptions", "rotated, skipped, would-rotate...", queued=True),
    "/tokens/{registry}/{token}/revoke": _token_action(
        "revoke_token", "Leaked credential: publish a fresh password, then remove the revoked one. Synchronous.",
        "Under the token's lock, regardless of the overlap window: regenerates the other slot, verifies it by "
        "logging in, publishes it to Key Vault, then removes the revoked slot's password from the token (a standby "
        "named by `slot` is just removed). The result says what still logs in. Running it again after an "
        "interruption finishes the removal. An empty body revokes the credential current in Key Vault.",
        "RevokeOptions", "revoked, would-revoke, skipped..."),
    "/tokens/{registry}/{token}/certificate": {
        "parameters": _TOKEN_PATH_PARAMETERS,
        "put": {
            "operationId": "put_certificate",
            "summary": "Put a PEM certificate (public certificate only) on the token.",
            "description": "Goes into the empty slot, else the slot whose certificate expires first; a "
                           "certificate already on the token changes nothing.",
            "parameters": [{"name": "dryRun", "in": "query", "required": False,
                            "description": "Validate and plan only.",
                            "schema": {"type": "string", "enum": ["true", "false"]}}],
            "requestBody": {"required": True, "content": {
                media_type: {"schema": {"type": "string", "maxLength": MAX_BODY_BYTES}}
                for media_type in PEM_MEDIA_TYPES}},
            "responses": _responses(_ok("Result", "Updated, or unchanged when already on the token."),
                                    "400", "404", "409", "413", "415", "422"),
        },
    },
    "/health": {"get": {
        "operationId": "health",
        "summary": "Is the rotator doing its job? 200 healthy, 503 unhealthy with reasons.",
        "description": "Reads the last scan's stored summary and the poison queue's length (two Storage calls, "
                       "no planning). Unhealthy when no scan has completed, the last one is older than two "
                       "schedule periods, a managed password or certificate expires within "
                       "ROTATOR_EXPIRY_ALERT_DAYS, or the poison queue holds messages. Needs a function key like "
                       "every route (its answer names tokens).",
        "responses": {
            "200": _ok("Health", "Healthy."),
            "503": _ok("Health", "Unhealthy: `reasons` says why."),
            **{status: _ref("responses", status) for status in ("401", "500")},
        },
    }},
    "/doctor": {"get": {
        "operationId": "doctor",
        "summary": "Preflight: settings, effective permissions, Key Vault and lease storage reachable and writable.",
        "description": "Each check is ok, fail (with the fix: the role and Bicep line that grant what is missing) "
                       "or not-checked (with why). Answers 200 whatever it finds; `ok` is false when anything is "
                       "missing. Writes one disabled version of the secret `rotator-doctor-write-probe` and takes a "
                       "lease on the blob `doctor-probe` of the lease container; never returns a secret.",
        "responses": _responses(_ok("DoctorReport", "The report.")),
    }},
    "/openapi.json": {"get": {
        "operationId": "openapi",
        "summary": "This document.",
        "responses": _responses({"description": "The OpenAPI document.",
                                 "content": {"application/json": {"schema": {"type": "object"}}}}),
    }},
}


_SECURITY_SCHEMES: dict[str, Any] = {
    "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key",
                    "description": "A function or host key of the app. Always required."},
    "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code",
                         "description": "The same key as a query parameter."},
    "entraId": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An Entra ID access token for the app registration the deployment names "
                               "(infra parameter apiAuthClientId, audience api://<client id>). Required in addition "
                               "to a function key when the deployment turns on Entra ID authentication; the "
                               "document's `security` says whether it is on for this app."},
}


def app_service_auth_enabled(environ: Mapping[str, str]) -> bool:
    """App Service sets WEBSITE_AUTH_ENABLED=True in the app's environment when its authentication is on."""
    return environ.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true"


def document(entra_id: bool = False) -> dict[str, Any]:
    """The whole document (a fresh dict: callers may change it). `entra_id`: App Service Authentication is on,
    so every request needs a bearer token besides the function key."""
    keys: list[dict[str, list[str]]] = [{"functionKey": []}, {"functionKeyQuery": []}]
    security = [{**key, "entraId": []} for key in keys] if entra_id else keys
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "acr-token-rotator",
            "version": "1.0.0",
            "description": "Status, manual rotation and certificate upload for ACR repository-scoped tokens "
                           "whose passwords the rotator keeps in Key Vault. No response ever contains a "
                           "password or a private key.",
        },
        "servers": [{"url": "/api"}],
        "security": security,
        "paths": copy.deepcopy(_PATHS),
        "components": copy.deepcopy({
            "securitySchemes": _SECURITY_SCHEMES,
            "schemas": _SCHEMAS,
            "responses": _RESPONSES,
            "parameters": _PARAMETERS,
        }),
    }

