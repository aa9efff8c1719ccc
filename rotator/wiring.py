"""Build the engine from settings: the one place that creates credentials and SDK clients."""

from __future__ import annotations

from collections.abc import Mapping

from rotator.azure.acr import Acr
from rotator.azure.lease import TokenLocks
from rotator.azure.login import RegistryLogin
from rotator.azure.vault import Vault
from rotator.azure.vault_certificates import VaultCertificates
from rotator.protocols.engine import Engine
from rotator.settings import Settings


def build_engine(settings: Settings) -> Engine:
    """Clients authenticate with DefaultAzureCredential (managed identity in Azure and in devstack).

    The identity is the one the settings name (AZURE_CLIENT_ID: a user-assigned identity), so the
    env map given to `Settings.from_env` decides it, not whatever this process's environment holds.
    """
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential(managed_identity_client_id=settings.azure_client_id)
    return Engine(
        settings=settings,
        acr=Acr(credential, settings.arm_endpoint),
        vault=Vault(credential, settings.vault_url),
        certificates=VaultCertificates(credential, settings.vault_url),
        locks=TokenLocks(settings.storage_connection, settings.storage_blob_url, credential,
                         settings.lease_container),
        login=RegistryLogin(),
    )


def engine_from_env(env: Mapping[str, str], require_targets: bool = True) -> Engine:
    return build_engine(Settings.from_env(env, require_targets=require_targets))
