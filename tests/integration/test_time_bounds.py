"""Every wait is bounded (issue 10 defect 7): throttling, slow answers and the run's own bound, through the
real SDK clients as `rotator.wiring` configures them. Outcomes, messages and call counts only: durations are
measured in bench/bounds_bench.py."""

from __future__ import annotations

import pytest

from devstack.control import Control
from rotator.azure import bounds
from rotator.azure.bounds import TimeBounds
from rotator.azure.errors import CallFailed
from rotator.azure.login import RegistryLogin
from rotator.core.resource_ids import parse_registry_id
from rotator.wiring import build_engine

from .conftest import EngineFactory, delay_new_passwords, writes
from .test_password_protocol import NO_OVERLAP, TOKEN, both_slots, current, logs_in, rotate


def test_key_vault_throttling_beyond_the_bound_fails_fast_and_publishes_nothing(harness: EngineFactory,
                                                                                 vault_control: Control) -> None:
    h = harness([both_slots()], **NO_OVERLAP)
    rotate(h)
    _, version, value = current(h)
    vault_control.reset_counters()
    vault_control.add_fault("secrets.set", status=429, retry_after=600, times=None)
    result = rotate(h)
    assert (result.action, result.transient, result.code) == ("failed", True, "Throttled")
    assert result.reason.startswith(f"Key Vault at {h.engine.settings.vault_url.rstrip('/')} throttled the call "
                                    "(429, Retry-After 600 s)")
    assert "ROTATOR_MAX_RETRY_AFTER_SECONDS" in result.reason
    assert vault_control.count("secrets.set") == 1
    assert current(h)[1] == version and logs_in(h, value), "nothing published; the credential keeps working"


def test_throttling_within_the_bound_is_waited_for(harness: EngineFactory, vault_control: Control) -> None:
    h = harness([both_slots()], ROTATOR_MAX_RETRY_AFTER_SECONDS="1")
    vault_control.reset_counters()
    vault_control.add_fault("secrets.set", status=429, retry_after=1, times=2)
    assert rotate(h).action == "rotated"
    assert vault_control.count("secrets.set") == 3


def test_a_retry_after_of_zero_seconds_allowed_means_no_waiting_at_all(harness: EngineFactory) -> None:
    h = harness([both_slots()], ROTATOR_MAX_RETRY_AFTER_SECONDS="0")
    h.acr.reset_counters()
    h.acr.add_fault("tokens.get", status=503, retry_after=1)
    result = rotate(h)
    assert (result.action, result.code) == ("failed", "Throttled")
    assert h.acr.count("tokens.get") == 1


@pytest.mark.parametrize(("service", "operation"), [("ARM", "tokens.get"), ("Storage (blob)", "lease.acquire")])
def test_an_answer_slower_than_the_call_bound_is_given_up(harness: EngineFactory, storage_control: Control,
                                                          service: str, operation: str) -> None:
    h = harness([both_slots()])
    # A call bound below the settings' 5 s minimum, through the same retry policies: the test waits less.
    h.engine = build_engine(h.engine.settings, bounds=TimeBounds(call_seconds=2))
    rotate(h)
    _, version, _ = current(h)
    control = h.acr if service == "ARM" else storage_control
    control.add_fault(operation, latency_ms=4000, times=None)
    result = rotate(h)
    assert (result.action, result.transient, result.code) == ("failed", True, "Timeout"), result
    assert f"{service} at https://127.0.0.1:" in result.reason and result.reason.endswith(": timed out")
    assert current(h)[1] == version


def test_no_call_starts_once_the_run_is_out_of_time(harness: EngineFactory, vault_control: Control) -> None:
    h = harness([both_slots()])
    h.acr.reset_counters()
    registry = parse_registry_id(h.registry.id)
    with bounds.deadline(0), pytest.raises(CallFailed) as refused:
        h.engine.acr.get_token(registry, h.registry.login_server, TOKEN)
    assert refused.value.code == "Timeout"
    assert "not called, the run's time bound (ROTATOR_RUN_TIMEOUT_SECONDS) is used up" in refused.value.message
    assert refused.value.message.startswith(f"ARM at {h.engine.settings.arm_endpoint}")
    assert h.acr.counters() == {}


def test_verification_stops_early_enough_to_leave_time_to_publish(harness: EngineFactory) -> None:
    """Inside a run with 7 s left and a 5 s call bound, a login that never works is retried for 2 s at most."""
    h = harness([both_slots()])
    login = RegistryLogin(first_wait_seconds=0.05, bounds=TimeBounds(call_seconds=5))
    with bounds.deadline(7):
        outcome = login.verify(h.registry.login_server, TOKEN, "not-the-password", timeout_seconds=90)
    assert not outcome.ok
    assert outcome.detail.endswith("stopped after 2 s by the run's time bound (ROTATOR_RUN_TIMEOUT_SECONDS)")


def test_a_run_out_of_time_after_generating_publishes_nothing(harness: EngineFactory, vault_control: Control) -> None:
    """The run's bound cuts verification short; the run fails transiently and Key Vault keeps its credential.

    The run's deadline is the sooner of ROTATOR_RUN_TIMEOUT_SECONDS (at least 30 s) and an enclosing one (an
    HTTP request's): an enclosing 20 s leaves 5 s of work before the lease release's 10 s and one call bound."""
    h = harness([both_slots()], ROTATOR_RUN_TIMEOUT_SECONDS="30", ROTATOR_CALL_TIMEOUT_SECONDS="5",
                ROTATOR_VERIFY_TIMEOUT_SECONDS="20", **NO_OVERLAP)
    rotate(h)
    _, version, value = current(h)
    h.acr.add_fault("registries.generateCredentials", latency_ms=1500)  # within the call bound, eats the run
    h.acr.add_fault("tokens.get", latency_ms=1500)
    vault_control.reset_counters()
    delay_new_passwords(h.stack, h.acr, h.registry.login_server, 3600)
    with bounds.deadline(20):
        result = rotate(h)
    assert result.action == "failed" and result.transient
    assert "nothing published" in result.reason and "by the run's time bound" in result.reason
    assert writes(vault_control) == [] and current(h)[1] == version and logs_in(h, value)
