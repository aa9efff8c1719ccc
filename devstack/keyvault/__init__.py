"""A Key Vault data-plane stand-in that the real azure-keyvault-secrets/-certificates clients drive.

Secrets and certificates over HTTPS, with Key Vault's challenge authentication, api-version
gate, per-vault limits, error format, paging and asynchronous soft delete; in memory. Operation names for the devstack
counters and faults are `secrets.<op>` and `certificates.<op>` (see the two API modules).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from devstack import bearer
from devstack.authz.store import RoleStore
from devstack.keyvault.certificates_api import CertificatesApi
from devstack.keyvault.model import Collection
from devstack.keyvault.secrets_api import SecretsApi, SecretVersion
from devstack.keyvault.service import API_VERSIONS, TENANT_ID, KeyVaultService, resource_of

__all__ = ["API_VERSIONS", "TENANT_ID", "KeyVaultService", "build_service", "create_service", "resource_of"]


def create_service(signing_key: str, roles: RoleStore | None = None) -> KeyVaultService:
    """A vault that accepts bearer tokens signed with `signing_key`, for the roles `roles` holds.

    Without a store, a new stack's roles in a private temporary folder (tokens minted with
    `devstack.bearer.issue` alone are the operator's, who may do anything in the vault)."""
    if roles is None:
        roles = RoleStore.open(Path(tempfile.mkdtemp(prefix="devstack-authz-")))
    service = KeyVaultService(signing_key, roles)
    secrets: Collection[SecretVersion] = Collection("secret", lambda: service.soft_delete_seconds)
    SecretsApi(service, secrets).register()
    CertificatesApi(service, secrets).register()
    return service


def build_service(state_dir: Path) -> KeyVaultService:
    """The vault of a devstack: trusts the stack's identity endpoint through `signing.key`, its role store."""
    return create_service(bearer.load_key(state_dir), RoleStore.open(state_dir))
