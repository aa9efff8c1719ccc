"""The token buckets the stand-ins throttle with (devstack/throttling.py), on a clock the test moves."""

from __future__ import annotations

import pytest

from devstack.acr.limits import LIMITS as ARM_LIMITS
from devstack.keyvault.limits import LIMITS as VAULT_LIMITS
from devstack.throttling import Charge, Limit, Limiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **limits: Limit) -> Limiter:
    return Limiter(limits or {"reads": Limit(3, 1)}, clock)


READ = Charge("reads", ("sub", "principal"))


def test_a_full_bucket_allows_its_capacity_then_refuses_with_the_wait_for_a_token() -> None:
    clock = Clock()
    buckets = limiter(clock)
    assert [buckets.take([READ]).remaining["reads"] for _ in range(3)] == [2, 1, 0]
    refused = buckets.take([READ])
    assert (refused.allowed, refused.retry_after, refused.refused_by) == (False, 1, "reads")
    assert buckets.refused == 1


def test_refused_requests_take_nothing_and_the_bucket_refills_at_its_rate() -> None:
    clock = Clock()
    buckets = limiter(clock, writes=Limit(2, 0.25))
    write = Charge("writes", ("sub",))
    buckets.take([write])
    buckets.take([write])
    assert buckets.take([write]).retry_after == 4  # a quarter token a second
    clock.now += 3.9
    assert not buckets.take([write]).allowed  # the refusals did not push the next token further away
    clock.now += 0.1
    assert buckets.take([write]).allowed
    clock.now += 3600
    assert buckets.take([write]).remaining["writes"] == 1  # never more than the capacity


def test_several_buckets_are_all_or_nothing() -> None:
    clock = Clock()
    buckets = limiter(clock, reads=Limit(5, 1), **{"global-reads": Limit(1, 1)})
    one, other = Charge("reads", ("sub", "a")), Charge("reads", ("sub", "b"))
    shared = Charge("global-reads", ("sub",))
    assert buckets.take([one, shared]).allowed
    refused = buckets.take([other, shared])
    assert (refused.allowed, refused.refused_by) == (False, "global-reads")
    clock.now += 1
    assert buckets.take([other, shared]).remaining == {"reads": 4, "global-reads": 0}  # b was not charged before


def test_principals_have_their_own_buckets() -> None:
    buckets = limiter(Clock(), reads=Limit(1, 1))
    assert buckets.take([Charge("reads", ("sub", "a"))]).allowed
    assert buckets.take([Charge("reads", ("sub", "b"))]).allowed
    assert not buckets.take([Charge("reads", ("sub", "a"))]).allowed


def test_configure_changes_limits_refills_and_switches_off() -> None:
    clock = Clock()
    buckets = limiter(clock)
    for _ in range(3):
        buckets.take([READ])
    buckets.configure({"limits": {"reads": {"capacity": 10, "per_second": 2}}})
    assert buckets.take([READ]).remaining["reads"] == 9
    buckets.configure({"enabled": False})
    assert all(buckets.take([READ]).allowed for _ in range(100))
    buckets.configure({"reset": True, "enabled": True})
    assert buckets.describe() == {"enabled": True, "throttled": 0,
                                  "limits": {"reads": {"capacity": 3, "per_second": 1}}}


@pytest.mark.parametrize("body", [
    {"limits": {"unknown": {"capacity": 1, "per_second": 1}}},
    {"limits": {"reads": {"capacity": 0, "per_second": 1}}},
    {"limits": {"reads": {"capacity": 5, "per_second": 0}}},
    {"limits": {"reads": {"capacity": "5", "per_second": 1}}},
    {"limits": {"reads": {"capacity": 5}}},
    {"enabled": "yes"},
    {"surprise": True},
    [],
])
def test_bad_configuration_is_refused_and_changes_nothing(body: object) -> None:
    buckets = limiter(Clock())
    before = buckets.describe()
    with pytest.raises(ValueError):
        buckets.configure(body)
    assert buckets.describe() == before


def test_the_documented_figures() -> None:
    """ARM: 250/25 reads, 200/10 writes and deletes per principal, 15x globally; Key Vault: per 10 s."""
    assert ARM_LIMITS["reads"] == Limit(250, 25) and ARM_LIMITS["global-reads"] == Limit(3750, 375)
    assert ARM_LIMITS["writes"] == ARM_LIMITS["deletes"] == Limit(200, 10)
    assert ARM_LIMITS["global-writes"] == ARM_LIMITS["global-deletes"] == Limit(3000, 150)
    assert VAULT_LIMITS["secret-create"].capacity == 300 and VAULT_LIMITS["secret-create"].per_second * 10 == 300
    assert VAULT_LIMITS["transactions"].capacity == 4000 and VAULT_LIMITS["transactions"].per_second * 10 == 4000
