"""Azure RBAC in front of the Key Vault stand-in: each operation's data action, 403 `ForbiddenByRbac`.

Data action names are Microsoft's (resource provider operations, Microsoft.KeyVault). Microsoft does
not publish which data action each REST operation checks; the mapping follows the actions'
descriptions: listing and reading properties (also of deleted objects) is `readMetadata`, reading a
value is `getSecret`, certificates are read with `certificates/read`. Object operations are scoped to
the object (`<vault>/secrets/<name>`), so assignments on one secret work; listings to the vault.
The refusal reproduces Key Vault's message, whose lines name caller, action and resource.
"""

from __future__ import annotations

from devstack import bearer
from devstack.authz.scopes import VAULT_ID, VAULT_LOCATION, VAULT_NAME
from devstack.authz.store import RoleStore
from devstack.httpbase import Request

_SECRETS = "Microsoft.KeyVault/vaults/secrets"
_CERTIFICATES = "Microsoft.KeyVault/vaults/certificates"
DATA_ACTIONS = {
    "secrets.list": f"{_SECRETS}/readMetadata/action",
    "secrets.list_versions": f"{_SECRETS}/readMetadata/action",
    "secrets.get": f"{_SECRETS}/getSecret/action",
    "secrets.set": f"{_SECRETS}/setSecret/action",
    "secrets.update": f"{_SECRETS}/update/action",
    "secrets.delete": f"{_SECRETS}/delete",
    "secrets.list_deleted": f"{_SECRETS}/readMetadata/action",
    "secrets.get_deleted": f"{_SECRETS}/readMetadata/action",
    "secrets.purge": f"{_SECRETS}/purge/action",
    "secrets.recover": f"{_SECRETS}/recover/action",
    "certificates.list": f"{_CERTIFICATES}/read",
    "certificates.list_versions": f"{_CERTIFICATES}/read",
    "certificates.get": f"{_CERTIFICATES}/read",
    "certificates.get_policy": f"{_CERTIFICATES}/read",
    "certificates.import": f"{_CERTIFICATES}/import/action",
    "certificates.update": f"{_CERTIFICATES}/update/action",
    "certificates.update_policy": f"{_CERTIFICATES}/update/action",
    "certificates.delete": f"{_CERTIFICATES}/delete",
    "certificates.list_deleted": f"{_CERTIFICATES}/read",
    "certificates.get_deleted": f"{_CERTIFICATES}/read",
    "certificates.purge": f"{_CERTIFICATES}/purge/action",
    "certificates.recover": f"{_CERTIFICATES}/recover/action",
}


def resource(operation: str, request: Request) -> str:
    """The resource Key Vault authorizes: the object for object operations, the vault for listings."""
    name = request.params.get("name")
    if name is None:
        return VAULT_ID
    return f"{VAULT_ID}/{operation.split('.', 1)[0]}/{name}"


def refusal_message(who: bearer.Caller, action: str, target: str) -> str:
    """The message of Key Vault's RBAC refusal (403 Forbidden, inner code ForbiddenByRbac)."""
    lines = [
        "Caller is not authorized to perform action on resource.",
        "If role assignments, deny assignments or role definitions were changed recently, please observe "
        "propagation time.",
        f"Caller: appid={who.client_id};oid={who.object_id};iss={who.issuer}",
        f"Action: '{action}'",
        f"Resource: '{target.lower()}'",
        "Assignment: (not found)",
        "DenyAssignmentId: null",
        "DecisionReason: 'DeniedWithNoValidRBAC' ",
        f"Vault: {VAULT_NAME};location={VAULT_LOCATION}",
    ]
    return "\r\n".join(lines) + "\r\n"


class KeyVaultAuthorizer:
    """Checks data-plane requests against one stack's role store."""

    def __init__(self, store: RoleStore) -> None:
        self.store = store

    def refusal(self, request: Request, operation: str) -> str | None:
        """None when the caller may perform the operation, else the refusal's message."""
        action = DATA_ACTIONS[operation]  # an operation without a data action is a bug
        target = resource(operation, request)
        who = bearer.caller(request.headers.get("authorization", ""))
        if self.store.snapshot().granting(who.object_id, action, target, data=True) is None:
            return refusal_message(who, action, target)
        return None
