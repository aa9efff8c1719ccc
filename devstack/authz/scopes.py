"""The resource IDs a stack's stand-ins stand for, so role assignments have real-looking scopes.

The vault, the storage account (Azurite's well-known account) and Application Insights live in the
stack's default subscription and resource group, where the seeding control also puts registries.
"""

from __future__ import annotations

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "devstack-rg"
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
VAULT_NAME = "devstack-vault"
VAULT_LOCATION = "westus"
VAULT_ID = f"{GROUP_ID}/providers/Microsoft.KeyVault/vaults/{VAULT_NAME}"
STORAGE_ID = f"{GROUP_ID}/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
INSIGHTS_ID = f"{GROUP_ID}/providers/Microsoft.Insights/components/devstack-appi"

# Where infra's grants land in a stack, by the type of resource they are scoped to. Grants scoped to
# registries (or to a subscription or resource group of registries) are given per registry instead.
STACK_SCOPES = {
    "Microsoft.KeyVault/vaults": VAULT_ID,
    "Microsoft.Storage/storageAccounts": STORAGE_ID,
    "Microsoft.Insights/components": INSIGHTS_ID,
}
