"""Build the engine from settings: the one place that creates credentials and SDK clients.

Every client gets the time bounds of the settings (`rotator.azure.bounds`): a bounded retry policy and
connect/read timeouts, so no Azure call waits longer than ROTATOR_CALL_TIMEOUT_SECONDS.
"""

from __future__ import annotations

from collections.abc import Mapping

from rotator.azure.acr import Acr
from rotator.azure.bounds import TimeBounds
from rotator.azure.lease import TokenLocks
from rotator.azure.login import RegistryLogin
from rotator.azure.scan_store import ScanStore
from rotator.azure.vault import Vault
from rotator.azure.vault_certificates import VaultCertificates
from rotator.azure.work_queue import WorkQueue
from rotator.metrics import default as metrics
from rotator.protocols.engine import Engine
from rotator.settings import Settings


def time_bounds(settings: Settings) -> TimeBounds:
    return TimeBounds(call_seconds=settings.call_timeout.total_seconds(),
                      max_retry_after_seconds=settings.max_retry_after.total_seconds(),
                      run_seconds=settings.run_timeout.total_seconds())


def build_engine(settings: Settings, bounds: TimeBounds | None = None) -> Engine:
    """Clients authenticate with DefaultAzureCredential (managed identity in Azure and in devstack).

    The identity is the one the settings name (ROTATOR_IDENTITY_CLIENT_ID, else AZURE_CLIENT_ID: a
    user-assigned identity; neither: the system-assigned one), so the env map given to `Settings.from_env`
    decides it, not whatever this process's environment holds.
    `bounds` replaces the settings' time bounds (bench/bounds_bench.py compares with the SDKs' defaults).
    """
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential(managed_identity_client_id=settings.identity_client_id)
    bounds = bounds or time_bounds(settings)
    locks = TokenLocks(settings.storage_connection, settings.storage_blob_url, credential, settings.lease_container,
                       bounds=bounds)
    queue = WorkQueue(settings.storage_connection, settings.storage_queue_url, credential, settings.queue,
                      bounds=bounds)
    # The poison gauge (rotator.metrics; a no-op until telemetry is on) reads the queue's length at each collection.
    metrics.observe_poison_length(queue.poison_name, queue.poison_length)
    return Engine(
        settings=settings,
        acr=Acr(credential, settings.arm_endpoint, bounds=bounds),
        vault=Vault(credential, settings.vault_url, bounds=bounds),
        certificates=VaultCertificates(credential, settings.vault_url, bounds=bounds),
        locks=locks,
        login=RegistryLogin(bounds=bounds),
        queue=queue,
        scans=ScanStore(locks.container),
    )


def engine_from_env(env: Mapping[str, str]) -> Engine:
    return build_engine(Settings.from_env(env))
