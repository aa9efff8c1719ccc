"""Short, secret-free descriptions of Azure SDK errors, and whether a retry could help."""

from __future__ import annotations

from azure.core.exceptions import AzureError, HttpResponseError


def describe(error: AzureError) -> str:
    """Status and error code only: SDK messages can echo request details we do not want in logs."""
    if isinstance(error, HttpResponseError):
        code = error.error.code if error.error is not None else None
        return f"Azure answered {error.status_code}{f' {code}' if code else ''}"
    return f"Azure call failed: {type(error).__name__}"


def is_transient(error: AzureError) -> bool:
    """Throttling, server errors and connection problems can pass; 4xx answers will not."""
    if isinstance(error, HttpResponseError):
        status = error.status_code or 0
        return status in (408, 429) or status >= 500
    return True
