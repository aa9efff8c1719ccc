"""Key Vault's error shape, so the SDK maps each failure to the exception Azure would cause."""

from __future__ import annotations

from typing import Any

from devstack.httpbase import Response


class KeyVaultError(Exception):
    """A refusal in Key Vault's format: `{"error": {"code", "message", "innererror"?}}`."""

    def __init__(self, status: int, code: str, message: str, inner_code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.headers = dict(headers or {})

    def response(self) -> Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner_code:
            error["innererror"] = {"code": self.inner_code}
        return Response(self.status, {"error": error}, self.headers)


def bad_parameter(message: str) -> KeyVaultError:
    """400 BadParameter: what Key Vault answers to a malformed name, body or query."""
    return KeyVaultError(400, "BadParameter", message)


def not_found(kind: str, name: str, version: str = "") -> KeyVaultError:
    """404 SecretNotFound / CertificateNotFound, with Key Vault's wording."""
    code = f"{kind.capitalize()}NotFound"
    target = f"{name}/{version}" if version else name
    return KeyVaultError(404, code, f"A {kind} with (name/id) {target} was not found in this key vault. "
                         f"If you recently deleted this {kind} you may be able to recover it using the correct "
                         "recovery command.")


def deleted_not_found(kind: str, name: str) -> KeyVaultError:
    """404 for the deleted-object collection (get deleted, purge, recover)."""
    return KeyVaultError(404, f"{kind.capitalize()}NotFound", f"Deleted {kind.capitalize()} not found: {name}")


def deleted_but_recoverable(kind: str, name: str) -> KeyVaultError:
    """409: a soft-deleted name cannot be reused until it is recovered or purged."""
    return KeyVaultError(409, "Conflict", f"{kind.capitalize()} {name} is currently in a deleted but recoverable "
                         f"state, and its name cannot be reused; in this state, the {kind} can only be recovered "
                         "or purged.", "ObjectIsDeletedButRecoverable")


def being_deleted(kind: str) -> KeyVaultError:
    """409 while a delete is still in progress: the name can be neither reused, purged nor recovered yet."""
    return KeyVaultError(409, "Conflict", f"{kind.capitalize()} is currently being deleted.", "ObjectIsBeingDeleted")


def throttled(retry_after: int) -> KeyVaultError:
    """429 with the body a throttled vault sends (recorded in 2023) and the wait before the next try."""
    return KeyVaultError(429, "Throttled", "Request was not processed because too many requests were received. "
                         "Reason: VaultRequestTypeLimitReached", headers={"Retry-After": str(retry_after)})


def disabled(kind: str, operation: str) -> KeyVaultError:
    """403: Azure never returns the value of a disabled version."""
    return KeyVaultError(403, "Forbidden", f"Operation {operation} is not allowed on a disabled {kind}.",
                         f"{kind.capitalize()}Disabled")


def managed_by_key_vault(operation: str) -> KeyVaultError:
    """403: a certificate's backing secret is written only through the certificate."""
    return KeyVaultError(403, "Forbidden", f'Operation "{operation}" is not allowed as this object\'s lifetime is '
                         "managed by Key Vault.", "SecretManagedByKeyVault")
