"""One blob lease per token in the function's storage account: the per-token lock.

Leases expire by themselves (60 s), so a crashed run never leaves a token locked for long; a
background thread renews the lease while the rotation works, and the protocol checks it is
still held right before publishing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from rotator.azure.errors import describe
from rotator.core.resource_ids import RegistryId

if TYPE_CHECKING:
    from azure.storage.blob import BlobLeaseClient, BlobServiceClient, ContainerClient

LEASE_SECONDS = 60
RENEW_EVERY_SECONDS = 20
PROBE_BLOB = "doctor-probe"  # no token's blob: theirs are <subscription>/<group>/<registry>/<token>
PROBE_LEASE_SECONDS = 15


class Busy(Exception):
    """Another run holds the token's lease."""


class LeaseLost(RuntimeError):
    """The lease could not be renewed: another run may own the token now; do not publish."""


class HeldLease:
    """A lease being renewed in the background until released."""

    def __init__(self, lease: BlobLeaseClient) -> None:
        self._lease = lease
        self._stop = threading.Event()
        self._lost: str | None = None
        self._thread = threading.Thread(target=self._renew_loop, name="lease-renewal", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_EVERY_SECONDS):
            self._renew()

    def _renew(self) -> None:
        try:
            self._lease.renew()
        except HttpResponseError as error:
            self._lost = f"lease renewal failed: {describe(error)}"
            self._stop.set()

    def check(self) -> None:
        """Renew now; raise LeaseLost if the lease is no longer ours."""
        if self._lost is None:
            self._renew()
        if self._lost is not None:
            raise LeaseLost(self._lost)

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._lost is None:
            with contextlib.suppress(HttpResponseError):
                self._lease.release()


class TokenLocks:
    """Per-token leases in one container of AzureWebJobsStorage."""

    def __init__(self, connection_string: str, blob_service_url: str, credential: TokenCredential,
                 container: str) -> None:
        from azure.storage.blob import BlobServiceClient

        if connection_string:
            service: BlobServiceClient = BlobServiceClient.from_connection_string(connection_string)
        elif blob_service_url:
            service = BlobServiceClient(blob_service_url, credential=credential)
        else:
            raise ValueError("AzureWebJobsStorage (or AzureWebJobsStorage__blobServiceUri) is required for the "
                             "per-token locks")
        self._container: ContainerClient = service.get_container_client(container)
        self._container_ready = False

    @staticmethod
    def blob_name(registry: RegistryId, token: str) -> str:
        return f"{registry.subscription}/{registry.resource_group}/{registry.name}/{token}".lower()

    @contextlib.contextmanager
    def hold(self, registry: RegistryId, token: str) -> Iterator[HeldLease]:
        """Hold the token's lease for the block; raise Busy when another run has it."""
        blob = self._container.get_blob_client(self.blob_name(registry, token))
        self._ensure_container()
        with contextlib.suppress(ResourceExistsError, HttpResponseError):
            blob.upload_blob(b"", overwrite=False)
        try:
            lease = blob.acquire_lease(lease_duration=LEASE_SECONDS)
        except HttpResponseError as error:
            if error.status_code == 409:
                raise Busy(f"another run holds the lock of {registry.name}/{token}") from None
            raise
        held = HeldLease(lease)
        try:
            yield held
        finally:
            held.release()

    def probe(self) -> None:
        """Create the container if needed, write the probe blob, take and release a lease on it (the doctor)."""
        self._ensure_container()
        blob = self._container.get_blob_client(PROBE_BLOB)
        blob.upload_blob(b"", overwrite=True)
        blob.acquire_lease(lease_duration=PROBE_LEASE_SECONDS).release()

    def _ensure_container(self) -> None:
        if not self._container_ready:
            with contextlib.suppress(ResourceExistsError):
                self._container.create_container()
            self._container_ready = True
