"""HeldLease.check: a lease taken or renewed under FRESH_SECONDS ago is trusted without a call; an older one is
renewed first, and any failed renewal means nothing may be published."""

from __future__ import annotations

import pytest
from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError

from rotator.azure.lease import FRESH_SECONDS, HeldLease, LeaseLost, Renewals, lease_clock
from rotator.core.resource_ids import RegistryId

REGISTRY = RegistryId("00000000-0000-0000-0000-000000000000", "rg", "reg")


class FakeLease:
    """Stands in for azure.storage.blob.BlobLeaseClient: counts renewals, raises `error` when set."""

    def __init__(self, error: AzureError | None = None) -> None:
        self.renewals = 0
        self.error = error

    def renew(self) -> None:
        self.renewals += 1
        if self.error is not None:
            raise self.error

    def release(self) -> None:
        pass


def held(lease: FakeLease, age: float) -> HeldLease:
    return HeldLease(lease, REGISTRY, "token", Renewals(), taken_at=lease_clock() - age)  # type: ignore[arg-type]


def test_a_lease_taken_moments_ago_is_checked_without_a_call() -> None:
    lease = FakeLease(HttpResponseError("would fail"))
    held(lease, age=0).check()
    assert lease.renewals == 0


def test_a_lease_older_than_fresh_seconds_is_renewed_then_trusted_again() -> None:
    lease = FakeLease()
    holder = held(lease, age=FRESH_SECONDS + 1)
    holder.check()
    holder.check()
    assert lease.renewals == 1


@pytest.mark.parametrize("error", [HttpResponseError("409 LeaseIdMismatchWithLeaseOperation"),
                                   HttpResponseError("412 LeaseLost"), HttpResponseError("503 ServerBusy"),
                                   ServiceRequestError("connection refused")])
def test_a_failed_renewal_before_publishing_raises_lease_lost(error: AzureError) -> None:
    lease = FakeLease(error)
    holder = held(lease, age=FRESH_SECONDS + 1)
    with pytest.raises(LeaseLost, match="lease renewal failed"):
        holder.check()
    lease.error = None
    with pytest.raises(LeaseLost):  # lost stays lost, and no further call is made
        holder.check()
    assert lease.renewals == 1


def test_a_failed_background_renewal_is_seen_by_a_fresh_check() -> None:
    lease = FakeLease(HttpResponseError("409"))
    holder = held(lease, age=0)
    holder.renew()  # what the background renewals do every RENEW_EVERY_SECONDS
    with pytest.raises(LeaseLost):
        holder.check()
