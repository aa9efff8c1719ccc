"""What went wrong in an Azure call, said so an operator can act on it, and never with a secret in it.

A reason like `Key Vault at https://kv.vault.azure.net answered 403 Forbidden (SecretDisabled): Operation get is
not allowed on a disabled secret.` keeps what the operator needs: the service and its endpoint, the status, the
error code and the inner codes (Key Vault nests them in `error.innererror`), and the service's own sentence
(for ARM's `AuthorizationFailed` it names the principal, the action and the scope: IDs, never secrets).

What is left out: paths and query strings (a SAS token lives in the query), request bodies, and the SDK's text
for connection errors (it can carry the whole URL). Azure does not echo secret values in its error messages;
the service's sentence is still cut short and scrubbed of anything shaped like a signature, key or token.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, HttpResponseError

MAX_MESSAGE_CHARS = 800  # room for an authorization failure naming the principal, action and scope
_SERVICES: dict[str, str] = {}  # endpoint (scheme://host[:port]) -> service name, named by the retry policies
# A SAS signature, an account key, a password or token parameter, an Authorization header's credentials.
_SECRET_SHAPES = re.compile(
    r"(?i)\b(sig|accountkey|sharedaccesssignature|sharedaccesskey|password|client_secret|access_token|"
    r"refresh_token)=([^&;\s'\"]+)|\b(?:bearer|basic)\s+[\w.~+/-]{16,}=*")
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Azure RBAC refusals name what was missing: ARM's `AuthorizationFailed` ("... perform action 'X' over
# scope 'Y' ...") and Key Vault's `ForbiddenByRbac` ("Action: 'X'" ... "Resource: 'Y'" lines).
_ARM_DENIAL = re.compile(r"perform action '([^']+)' over scope '([^']+)'")
_KEYVAULT_DENIAL = re.compile(r"Action: '([^']+)'.*?Resource: '([^']+)'", re.DOTALL)


class CallFailed(AzureError):
    """An Azure call that got no usable answer (no connection, no time left, throttled for too long).

    Raised by the bounded retry policies (`rotator.azure.bounds`), which know the service and endpoint;
    the message is already safe to show. `code` is a stable machine-readable cause.
    """

    def __init__(self, message: str, code: str, transient: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.transient = transient


def name_endpoint(url: str, service: str) -> None:
    """Say which service answers at `url` (e.g. "Key Vault"), so messages name it: each bounded retry policy
    (`rotator.azure.bounds`) names the endpoints its client calls."""
    _SERVICES[endpoint(url)] = service


def endpoint(url: str) -> str:
    """Scheme, host and port of a URL: no path, no query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()


def where(url: str) -> str:
    """`Key Vault at https://kv.vault.azure.net` (or `Azure at ...` for an endpoint nobody named)."""
    return f"{_SERVICES.get(endpoint(url), 'Azure')} at {endpoint(url)}"


def describe(error: BaseException) -> str:
    """One safe sentence: service, endpoint, status, error codes, the service's message; or the root cause."""
    if isinstance(error, CallFailed):
        return str(error.message)
    if isinstance(error, HttpResponseError):
        return _describe_answer(error)
    return f"Azure call failed: {root_cause(error)}"


def missing_permission(error: AzureError) -> tuple[str, str] | None:
    """(action, scope) of an RBAC refusal, None for any other error."""
    if not isinstance(error, HttpResponseError) or error.status_code != 403:
        return None
    text = error.error.message if error.error is not None and error.error.message else str(error.message)
    match = _ARM_DENIAL.search(text) or _KEYVAULT_DENIAL.search(text)
    return (match[1], match[2]) if match else None


def error_code(error: BaseException) -> str | None:
    """The most specific error code (inner codes first), `Throttled` for a bare 429, else None."""
    if isinstance(error, CallFailed):
        return error.code
    codes = list(_codes(error)) if isinstance(error, HttpResponseError) else []
    if codes:
        return codes[-1]
    if isinstance(error, HttpResponseError) and error.status_code == 429:
        return "Throttled"
    return None


def is_transient(error: BaseException) -> bool:
    """Throttling, server errors, timeouts and connection problems can pass; other 4xx answers will not."""
    if isinstance(error, CallFailed):
        return error.transient
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        return error.status_code in RETRYABLE_STATUSES or error.status_code >= 500
    return True


def retry_after_seconds(headers: Any) -> float | None:
    """The answer's Retry-After (or x-ms-retry-after-ms) in seconds, None when absent or unreadable."""
    from azure.core.pipeline.policies._utils import parse_retry_after

    lowered = {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
    try:
        if "retry-after" in lowered:
            return parse_retry_after(lowered["retry-after"])
        for name in ("retry-after-ms", "x-ms-retry-after-ms"):
            if name in lowered:
                return parse_retry_after(lowered[name]) / 1000
    except (ValueError, TypeError):
        return None
    return None


def safe_text(text: str) -> str:
    """A service's sentence on one line, scrubbed of secret-shaped parts and cut to MAX_MESSAGE_CHARS."""
    text = _SECRET_SHAPES.sub(lambda m: f"{m.group(1)}=***" if m.group(1) else "***", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def root_cause(error: BaseException) -> str:
    """What broke under a connection error, in words (refused, timed out, TLS, name resolution, dropped)."""
    for cause in _chain(error):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({getattr(cause, 'reason', None) or type(cause).__name__})"
        if isinstance(cause, socket.gaierror):
            return "host name not resolved"
        if isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__:
            return "timed out"
        if type(cause).__name__ in ("RemoteDisconnected", "IncompleteRead"):
            return "connection closed without an answer"
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            return "connection reset"
    return type(error).__name__


def _describe_answer(error: HttpResponseError) -> str:
    response: Any = error.response
    request = getattr(response, "request", None)
    place = where(str(request.url)) if request is not None else "Azure"
    status = f"{error.status_code} {error.reason or ''}".strip()
    codes = [c for c in dict.fromkeys(_codes(error)) if c.lower() != (error.reason or "").replace(" ", "").lower()]
    text = f"{place} answered {status}" + (f" ({', '.join(codes)})" if codes else "")
    denied = missing_permission(error)
    if denied:
        text += f": the identity lacks {denied[0]} on {denied[1]}"
    message = _service_message(error)
    if message:
        text += f"; Azure said: {message}" if denied else f": {message}"
    wait = retry_after_seconds(response.headers if response is not None else None)
    if wait is not None and error.status_code in RETRYABLE_STATUSES:
        text += f" [Retry-After {wait:g} s]"
    return text


def _codes(error: HttpResponseError) -> Iterator[str]:
    """Outer to inner: the OData code, then nested innererror codes; for Storage, the x-ms-error-code."""
    if error.error is not None:
        if error.error.code:
            yield str(error.error.code)
        inner: Any = error.error.innererror
        while isinstance(inner, dict):
            if inner.get("code"):
                yield str(inner["code"])
            inner = inner.get("innererror")
    storage_code = getattr(error, "error_code", None)
    if storage_code:
        yield str(getattr(storage_code, "value", storage_code))


def _service_message(error: HttpResponseError) -> str:
    if error.error is not None and error.error.message:
        return safe_text(str(error.error.message))
    if getattr(error, "error_code", None):  # Storage: its message's first line; the rest is request IDs and codes
        return safe_text(str(error.message or "").split("\n", 1)[0])
    return ""


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps (azure-core's inner_exception, requests' args, urllib3's reason)."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [getattr(current, "inner_exception", None), getattr(current, "reason", None),
                  current.__cause__, current.__context__, *current.args]
        pending.extend(e for e in linked if isinstance(e, BaseException))
