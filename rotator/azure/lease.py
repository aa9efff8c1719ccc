"""One blob lease per token in the function's storage account: the per-token lock.

Leases expire by themselves (60 s), so a crashed run never leaves a token locked for long; a background
thread renews the lease while the rotation works, and the protocol checks it is still held right before
publishing. Giving the lease back is a courtesy: when the release fails (Storage down, connection lost), the
work is done all the same and the lease expires within 60 s, so that is a WARNING, never the run's result.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError

from rotator.azure.bounds import DEFAULT_BOUNDS, TimeBounds
from rotator.azure.errors import CallFailed, describe, error_code, is_transient
from rotator.core.resource_ids import RegistryId
from rotator.logs import log_event

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobLeaseClient, BlobServiceClient, ContainerClient

LEASE_SECONDS = 60
RENEW_EVERY_SECONDS = 20
STOP_RENEWING_WAIT_SECONDS = 1.0  # a renewal in flight is not waited for: the release (or the expiry) ends it
SERVICE = "Storage (blob)"
PROBE_BLOB = "doctor-probe"  # no token's blob: theirs are <subscription>/<group>/<registry>/<token>
PROBE_LEASE_SECONDS = 15


class Busy(Exception):
    """Another run holds the token's lease."""


class LeaseLost(RuntimeError):
    """The lease could not be renewed: another run may own the token now; do not publish."""


class HeldLease:
    """A lease being renewed in the background until released."""

    def __init__(self, lease: BlobLeaseClient, registry: RegistryId, token: str) -> None:
        self._lease = lease
        self._where = {"registry": registry.name, "token": token}
        self._stop = threading.Event()
        self._lost: str | None = None
        self._thread = threading.Thread(target=self._renew_loop, name="lease-renewal", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(RENEW_EVERY_SECONDS):
            self._renew()

    def _renew(self) -> None:
        """Any failed renewal (refused, Storage unreachable) means the lease is no longer known to be ours."""
        try:
            self._lease.renew()
        except AzureError as error:
            self._lost = f"lease renewal failed: {describe(error)}"
            self._stop.set()

    def check(self) -> None:
        """Renew now; raise LeaseLost if the lease is no longer ours."""
        if self._lost is None:
            self._renew()
        if self._lost is not None:
            raise LeaseLost(self._lost)

    def release(self) -> None:
        """Stop renewing and give the lease back. Never raises: a failed release is logged and the lease expires.

        Tried even after a failed renewal: when that failure was Storage's and not another holder, the lease is
        still ours, and releasing it frees the token now rather than in 60 s."""
        self._stop.set()
        self._thread.join(timeout=STOP_RENEWING_WAIT_SECONDS)
        try:
            self._lease.release()
        except AzureError as error:
            if self._lost is None:  # after a failed renewal, a refused release is expected
                log_event("lease-release-failed", level=logging.WARNING, **self._where, reason=describe(error),
                          code=error_code(error), expires_within_seconds=LEASE_SECONDS)


class TokenLocks:
    """Per-token leases in one container of AzureWebJobsStorage."""

    def __init__(self, connection_string: str, blob_service_url: str, credential: TokenCredential,
                 container: str, bounds: TimeBounds = DEFAULT_BOUNDS) -> None:
        from azure.storage.blob import BlobServiceClient

        options = bounds.storage_options(SERVICE)
        if connection_string:
            service: BlobServiceClient = BlobServiceClient.from_connection_string(connection_string, **options)
        elif blob_service_url:
            service = BlobServiceClient(blob_service_url, credential=credential, **options)
        else:
            raise ValueError("AzureWebJobsStorage (or AzureWebJobsStorage__blobServiceUri) is required for the "
                             "per-token locks")
        self._container: ContainerClient = service.get_container_client(container)

    @staticmethod
    def blob_name(registry: RegistryId, token: str) -> str:
        return f"{registry.subscription}/{registry.resource_group}/{registry.name}/{token}".lower()

    @contextlib.contextmanager
    def hold(self, registry: RegistryId, token: str) -> Iterator[HeldLease]:
        """Hold the token's lease for the block; raise Busy when another run has it.

        Any other failure to take it is a CallFailed naming Storage and the cause: nothing was done."""
        blob = self._container.get_blob_client(self.blob_name(registry, token))
        try:
            lease = self._acquire(blob)
        except AzureError as error:
            if isinstance(error, HttpResponseError) and error.status_code == 409:
                raise Busy(f"another run holds the lock of {registry.name}/{token}") from None
            raise CallFailed(f"could not take the lock of {registry.name}/{token} (blob lease): {describe(error)}",
                             error_code(error) or "LockFailed", is_transient(error)) from None
        held = HeldLease(lease, registry, token)
        try:
            yield held
        finally:
            held.release()

    def probe(self) -> None:
        """Create the container if needed, write the probe blob, take and release a lease on it (the doctor)."""
        with _unless_exists():
            self._container.create_container()
        blob = self._container.get_blob_client(PROBE_BLOB)
        blob.upload_blob(b"", overwrite=True)
        blob.acquire_lease(lease_duration=PROBE_LEASE_SECONDS).release()

    def _acquire(self, blob: BlobClient) -> BlobLeaseClient:
        """Lease the token's blob; the first run for a token (or a new container) creates it first."""
        try:
            return blob.acquire_lease(lease_duration=LEASE_SECONDS)
        except ResourceNotFoundError:
            self._create(blob)
            return blob.acquire_lease(lease_duration=LEASE_SECONDS)

    def _create(self, blob: BlobClient) -> None:
        try:
            _create_empty(blob)
        except ResourceNotFoundError:  # the container does not exist yet
            with _unless_exists():
                self._container.create_container()
            _create_empty(blob)


def _create_empty(blob: BlobClient) -> None:
    with _unless_exists():
        blob.upload_blob(b"", overwrite=False)


@contextlib.contextmanager
def _unless_exists() -> Iterator[None]:
    """Another run creating the same blob or container at the same time is fine: 409 (exists) or 412 (leased)."""
    try:
        yield
    except HttpResponseError as error:
        if error.status_code not in (409, 412):
            raise
