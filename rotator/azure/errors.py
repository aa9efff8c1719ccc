"""Short, secret-free descriptions of Azure SDK errors, and whether a retry could help."""

from __future__ import annotations

import re

from azure.core.exceptions import AzureError, HttpResponseError

# Azure RBAC refusals name what was missing: ARM's `AuthorizationFailed` ("... perform action 'X' over
# scope 'Y' ...") and Key Vault's `ForbiddenByRbac` ("Action: 'X'" ... "Resource: 'Y'" lines).
_ARM_DENIAL = re.compile(r"perform action '([^']+)' over scope '([^']+)'")
_KEYVAULT_DENIAL = re.compile(r"Action: '([^']+)'.*?Resource: '([^']+)'", re.DOTALL)


def missing_permission(error: AzureError) -> tuple[str, str] | None:
    """(action, scope) of an RBAC refusal, None for any other error."""
    if not isinstance(error, HttpResponseError) or error.status_code != 403:
        return None
    text = error.error.message if error.error is not None and error.error.message else str(error.message)
    match = _ARM_DENIAL.search(text) or _KEYVAULT_DENIAL.search(text)
    return (match[1], match[2]) if match else None


def describe(error: AzureError) -> str:
    """Status, error codes and, for an RBAC refusal, the missing action and its scope.

    Only those: SDK messages can echo request details we do not want in logs."""
    if isinstance(error, HttpResponseError):
        code = error.error.code if error.error is not None else None
        inner = (error.error.innererror or {}).get("code") if error.error is not None else None
        text = f"Azure answered {error.status_code}{f' {code}' if code else ''}{f' ({inner})' if inner else ''}"
        denied = missing_permission(error)
        return f"{text}: the identity lacks {denied[0]} on {denied[1]}" if denied else text
    return f"Azure call failed: {type(error).__name__}"


def is_transient(error: AzureError) -> bool:
    """Throttling, server errors and connection problems can pass; 4xx answers will not."""
    if isinstance(error, HttpResponseError):
        status = error.status_code or 0
        return status in (408, 429) or status >= 500
    return True
