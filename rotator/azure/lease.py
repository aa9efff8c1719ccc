"""One blob lease per token in the function's storage account: the per-token lock.

Leases expire by themselves (60 s), so a crashed run never leaves a token locked for long; a background
thread renews the lease while the rotation works, and the protocol checks it is still held right before
publishing. That check costs a Storage call only when the lease was last taken or renewed FRESH_SECONDS ago
or more: a lease renewed more recently has at least 40 s left, by a clock that keeps counting while the
machine is suspended, and a stall after the check is the publish fence's to catch, as it is after a renewal.

Giving the lease back is a courtesy: when the release fails (Storage down, connection lost), the
work is done all the same and the lease expires within 60 s, so that is a WARNING, never the run's result.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
RENEW_THREADS = 4  # renewals in flight at once, per process
FRESH_SECONDS = RENEW_EVERY_SECONDS  # taken or renewed this recently: check() trusts it without a call
SERVICE = "Storage (blob)"
PROBE_BLOB = "doctor-probe"  # no token's blob: theirs are <subscription>/<group>/<registry>/<token>
PROBE_LEASE_SECONDS = 15


def lease_clock() -> float:
    """Seconds on a clock that, like a lease's expiry, keeps counting while the machine is suspended (Linux's
    boot time clock, where Azure Functions runs; the monotonic clock elsewhere)."""
    return time.clock_gettime(getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC))


class Busy(Exception):
    """Another run holds the token's lease."""


class LeaseLost(RuntimeError):
    """The lease could not be renewed: another run may own the token now; do not publish."""


class HeldLease:
    """A lease renewed in the background (by the process's `Renewals`) until released."""

    def __init__(self, lease: BlobLeaseClient, registry: RegistryId, token: str, renewals: Renewals,
                 taken_at: float) -> None:
        self._lease = lease
        self._where = {"registry": registry.name, "token": token}
        self._lost: str | None = None
        self._renewed_at = taken_at  # when the request that took the lease was sent (lease_clock())
        self._renewals = renewals
        renewals.add(self)

    def renew(self) -> None:
        """Any failed renewal (refused, Storage unreachable) means the lease is no longer known to be ours."""
        if self._lost is not None:
            return
        sent = lease_clock()
        try:
            self._lease.renew()
        except AzureError as error:
            self._lost = f"lease renewal failed: {describe(error)}"
            self._renewals.remove(self)
        else:
            self._renewed_at = sent

    def check(self) -> None:
        """Raise LeaseLost unless the lease is ours: renewed under FRESH_SECONDS ago, or renewed now."""
        if self._lost is None and lease_clock() - self._renewed_at >= FRESH_SECONDS:
            self.renew()
        if self._lost is not None:
            raise LeaseLost(self._lost)

    def release(self) -> None:
        """Stop renewing and give the lease back. Never raises: a failed release is logged and the lease expires.

        Tried even after a failed renewal: when that failure was Storage's and not another holder, the lease is
        still ours, and releasing it frees the token now rather than in 60 s."""
        self._renewals.remove(self)
        try:
            self._lease.release()
        except AzureError as error:
            if self._lost is None:  # after a failed renewal, a refused release is expected
                log_event("lease-release-failed", level=logging.WARNING, **self._where, reason=describe(error),
                          code=error_code(error), expires_within_seconds=LEASE_SECONDS)


class Renewals:
    """Renews every lease a process holds, each every RENEW_EVERY_SECONDS, with one scheduling thread and at most
    RENEW_THREADS renewals at once.

    Why not a thread per lease: an instance runs up to batchSize + newBatchThreshold rotations at once (host.json),
    each waiting seconds for its password to replicate; their leases need a renewal every 20 s, not a thread each.
    Renewals run in a small pool so one slow Storage call (bounded by ROTATOR_CALL_TIMEOUT_SECONDS) never holds
    the others back past the 60 s a lease lasts."""

    def __init__(self) -> None:
        self._due: dict[HeldLease, float] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    def add(self, held: HeldLease) -> None:
        with self._changed:
            self._due[held] = time.monotonic() + RENEW_EVERY_SECONDS
            if self._thread is None:
                self._pool = ThreadPoolExecutor(RENEW_THREADS, thread_name_prefix="lease-renewal")
                self._thread = threading.Thread(target=self._run, name="lease-renewals", daemon=True)
                self._thread.start()
            self._changed.notify()

    def remove(self, held: HeldLease) -> None:
        with self._changed:
            self._due.pop(held, None)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                ready = [held for held, at in self._due.items() if at <= now]
                for held in ready:
                    self._due[held] = now + RENEW_EVERY_SECONDS
                if not ready:
                    self._changed.wait(min(self._due.values(), default=now + RENEW_EVERY_SECONDS) - now)
                    continue
            assert self._pool is not None
            for held in ready:
                self._pool.submit(held.renew)


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
        self.container: ContainerClient = service.get_container_client(container)
        self._renewals = Renewals()

    @staticmethod
    def blob_name(registry: RegistryId, token: str) -> str:
        return f"{registry.subscription}/{registry.resource_group}/{registry.name}/{token}".lower()

    @contextlib.contextmanager
    def hold(self, registry: RegistryId, token: str) -> Iterator[HeldLease]:
        """Hold the token's lease for the block; raise Busy when another run has it.

        Any other failure to take it is a CallFailed naming Storage and the cause: nothing was done."""
        blob = self.container.get_blob_client(self.blob_name(registry, token))
        taken_at = lease_clock()
        try:
            lease = self._acquire(blob)
        except AzureError as error:
            if isinstance(error, HttpResponseError) and error.status_code == 409:
                raise Busy(f"another run holds the lock of {registry.name}/{token}") from None
            raise CallFailed(f"could not take the lock of {registry.name}/{token} (blob lease): {describe(error)}",
                             error_code(error) or "LockFailed", is_transient(error)) from None
        held = HeldLease(lease, registry, token, self._renewals, taken_at)
        try:
            yield held
        finally:
            held.release()

    def probe(self) -> None:
        """Create the container if needed, write the probe blob, take and release a lease on it (the doctor)."""
        ensure_container(self.container)
        blob = self.container.get_blob_client(PROBE_BLOB)
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
            ensure_container(self.container)
            _create_empty(blob)


def ensure_container(container: ContainerClient) -> None:
    """Create the container if missing; one created meanwhile by another run is as good."""
    with _unless_exists():
        container.create_container()


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
