"""The password protocol end to end against the stand-ins, through the real SDKs (issue 4 acceptance).

Several tests here rotate the same token back to back to exercise crash safety and alternation; they
turn the overlap window off (NO_OVERLAP), which tests/integration/test_never_break.py proves on its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.keyvault.secrets import SecretClient
from azure.storage.blob import BlobLeaseClient, BlobServiceClient

from devstack.control import password_spec, token_spec
from devstack.seeding import manage_in_vault
from devstack.skopeo import Skopeo
from rotator.azure.lease import FRESH_SECONDS, TokenLocks
from rotator.azure.login import RegistryLogin
from rotator.core.model import TAG_SLOT, secret_name
from rotator.core.resource_ids import parse_registry_id
from rotator.protocols import password_rotation
from tests.polling import wait_for

from .conftest import EngineFactory, Harness, delay_new_passwords, set_replication_delay

TOKEN = "ci-pull"
DAY = 86400.0
NO_OVERLAP = {"ROTATOR_MIN_OVERLAP_HOURS": "0"}


def both_slots(expiry_days: float = 60) -> dict[str, object]:
    expiry = time.time() + expiry_days * DAY
    return token_spec(TOKEN, passwords={"password1": password_spec(expiry), "password2": password_spec(expiry)})


def rotate(h: Harness, force: bool = True, **kwargs: object):
    registry = parse_registry_id(h.registry.id)
    return password_rotation.rotate(h.engine, registry, h.registry.login_server, TOKEN, force=force, **kwargs)  # type: ignore[arg-type]


def vault_secret(h: Harness) -> SecretClient:
    return h.engine.vault._client


def current(h: Harness, token: str = TOKEN) -> tuple[str, str, str]:
    """(slot tag, version, value) of the token's Key Vault secret."""
    secret = vault_secret(h).get_secret(secret_name(h.registry.name, token))
    return secret.properties.tags[TAG_SLOT], str(secret.properties.version), str(secret.value)


def logs_in(h: Harness, password: str) -> bool:
    return RegistryLogin(first_wait_seconds=0.05).verify(h.registry.login_server, TOKEN, password, 0).ok


def generate_calls(h: Harness) -> int:
    return h.acr.count("registries.generateCredentials")


def skopeo_logs_in(skopeo: Skopeo, h: Harness, password: str, authfile: Path) -> bool:
    return skopeo.login(h.registry.login_server, TOKEN, password, authfile).returncode == 0


def test_forced_rotations_alternate_and_previous_value_keeps_working(harness: EngineFactory, skopeo: Skopeo,
                                                                     tmp_path: Path) -> None:
    h = harness([both_slots()], **NO_OVERLAP)
    authfile = tmp_path / "auth.json"
    seen: list[tuple[str, str]] = []
    for expected in ("password2", "password1", "password2"):
        result = rotate(h)
        assert result.action == "rotated", result
        slot, version, value = current(h)
        assert (result.slot, slot, result.version) == (expected, expected, version)
        assert skopeo_logs_in(skopeo, h, value, authfile)
        if seen:
            previous_slot, previous_value = seen[-1]
            assert previous_slot != slot
            assert skopeo_logs_in(skopeo, h, previous_value, authfile), "the previous credential must keep working"
        seen.append((slot, value))
    assert len({value for _, value in seen}) == 3


def test_not_due_token_is_skipped_without_any_write(harness: EngineFactory) -> None:
    h = harness([both_slots()])
    rotate(h)  # adopt: now managed, fresh for 90 days
    h.acr.reset_counters()
    result = rotate(h, force=False)
    assert result.action == "skipped" and "not due until" in result.reason
    assert generate_calls(h) == 0


def test_dry_run_writes_nothing(harness: EngineFactory) -> None:
    h = harness([both_slots(expiry_days=1)], **NO_OVERLAP)
    rotate(h)
    slot, version, _ = current(h)
    h.acr.reset_counters()
    result = rotate(h, force=True, dry_run=True)
    assert result.action == "would-rotate" and result.slot != slot
    assert generate_calls(h) == 0
    assert current(h)[1] == version


@pytest.mark.parametrize("failure", ["publish", "verify-timeout"])
def test_failure_after_generate_keeps_the_vault_credential_working(harness: EngineFactory, vault_control,
                                                                    failure: str) -> None:
    h = harness([both_slots()], ROTATOR_VERIFY_TIMEOUT_SECONDS="1", **NO_OVERLAP)
    rotate(h)
    slot, version, value = current(h)
    active_before = h.acr.token_passwords(h.registry.name, TOKEN)[slot].value
    if failure == "publish":
        vault_control.add_fault("secrets.set", status=403, times=None)
    else:
        delay_new_passwords(h.stack, h.acr, h.registry.login_server, 3600)

    result = rotate(h)

    assert result.action == "failed", result
    assert ("nothing published" in result.reason) if failure == "verify-timeout" else "403" in result.reason
    assert current(h)[1] == version, "Key Vault's current version must not change"
    assert logs_in(h, value), "the credential consumers hold must keep working"
    assert h.acr.token_passwords(h.registry.name, TOKEN)[slot].value == active_before, "active slot regenerated"

    vault_control.clear_faults()
    set_replication_delay(h.stack, h.registry.login_server, 0)
    rerun = rotate(h)  # the active slot is unchanged, so the rerun targets the same standby slot
    assert rerun.action == "rotated" and rerun.slot != slot
    assert logs_in(h, current(h)[2])


def test_crash_after_generate_leaves_vault_working_and_rerun_completes(harness: EngineFactory) -> None:
    """A real crash: the CLI is killed with SIGKILL after generateCredentials, before it can publish."""
    h = harness([both_slots()], **NO_OVERLAP)
    rotate(h)
    slot, version, value = current(h)
    active_before = h.acr.token_passwords(h.registry.name, TOKEN)[slot].value
    delay_new_passwords(h.stack, h.acr, h.registry.login_server, 3600)
    h.acr.reset_counters()
    env = {**os.environ, **h.stack.env, "ROTATOR_REGISTRIES": h.registry.id, "ROTATOR_VERIFY_TIMEOUT_SECONDS": "120",
           **NO_OVERLAP}
    victim = subprocess.Popen([sys.executable, "-m", "rotator", "rotate", h.registry.name, TOKEN, "--force"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: generate_calls(h) == 1, "generateCredentials", deadline_seconds=20)
    finally:
        victim.kill()
        victim.wait()
    assert current(h)[1] == version and logs_in(h, value)
    assert h.acr.token_passwords(h.registry.name, TOKEN)[slot].value == active_before
    BlobLeaseClient(lease_blob(h)).break_lease(lease_break_period=0)  # stands in for the 60 s lease expiry
    set_replication_delay(h.stack, h.registry.login_server, 0)
    rerun = rotate(h)
    assert rerun.action == "rotated" and rerun.slot != slot
    assert logs_in(h, current(h)[2])


def lease_blob(h: Harness):
    service = BlobServiceClient.from_connection_string(h.stack.env["AzureWebJobsStorage"])
    name = TokenLocks.blob_name(parse_registry_id(h.registry.id), TOKEN)
    return service.get_blob_client(h.engine.settings.lease_container, name)


def test_lease_lost_mid_rotation_publishes_nothing(harness: EngineFactory) -> None:
    """Someone takes the lock while the new password replicates: the next renewal (in the background every
    RENEW_EVERY_SECONDS, or before publishing once the last one is FRESH_SECONDS old) is refused."""
    h = harness([both_slots()], ROTATOR_VERIFY_TIMEOUT_SECONDS="60", **NO_OVERLAP)
    rotate(h)
    _, version, value = current(h)
    delay_new_passwords(h.stack, h.acr, h.registry.login_server, FRESH_SECONDS + 1)
    h.acr.reset_counters()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(rotate, h)
        wait_for(lambda: generate_calls(h) == 1, "generateCredentials", deadline_seconds=20)
        blob = lease_blob(h)
        BlobLeaseClient(blob).break_lease(lease_break_period=0)
        blob.acquire_lease(lease_duration=60)  # someone else owns the token now
        result = future.result(timeout=90)
    assert result.action == "failed" and "lease" in result.reason and "nothing published" in result.reason
    assert current(h)[1] == version and logs_in(h, value)


# Every request a rotation makes besides the login checks, once its lock blob exists (docs/architecture.md).
CALLS_PER_ROTATION = {"lease.acquire": 1, "tokens.get": 2, "secrets.get": 1, "registries.generateCredentials": 1,
                      "secrets.set": 1, "lease.release": 1}


def test_a_rotation_makes_seven_calls_besides_verification(harness: EngineFactory, vault_control,
                                                           storage_control) -> None:
    """A due token in its steady state (managed in Key Vault, its lock blob left by an earlier run), as a queued
    run meets it: the lease taken moments ago is trusted before publishing (FRESH_SECONDS), so no renewal."""
    h = harness([both_slots(expiry_days=10)], **NO_OVERLAP)
    manage_in_vault(vault_secret(h), h.registry, TOKEN)
    with h.engine.locks.hold(parse_registry_id(h.registry.id), TOKEN):
        pass
    for control in (h.acr, vault_control, storage_control):
        control.reset_counters()
    assert rotate(h, force=False).action == "rotated"
    counters = {**h.acr.counters(), **vault_control.counters(), **storage_control.counters()}
    made = {op: n for op, n in counters.items() if n and op not in ("auth.challenge", "throttled")}
    assert made == CALLS_PER_ROTATION and sum(made.values()) == 7, made


def test_ten_concurrent_rotations_generate_once(harness: EngineFactory, vault_control) -> None:
    """Ten forced requests at once: one rotates, the nine others wait for its lock and are satisfied by it."""
    h = harness([token_spec(TOKEN, passwords={"password1": password_spec(time.time() + 60 * DAY)})])
    manage_in_vault(vault_secret(h), h.registry, TOKEN)  # the standby is empty: nothing to protect
    delay_new_passwords(h.stack, h.acr, h.registry.login_server, 3600)
    h.acr.reset_counters()
    vault_control.reset_counters()

    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(rotate, h) for _ in range(10)]
        # The winner is stuck verifying; every request has read the version it saw (1 read each, +1 winner).
        wait_for(lambda: generate_calls(h) == 1 and vault_control.count("secrets.get") >= 11, "ten requests",
                 deadline_seconds=20)
        set_replication_delay(h.stack, h.registry.login_server, 0)
        results = [f.result(timeout=120) for f in futures]

    rotated = [r for r in results if r.action == "rotated"]
    assert generate_calls(h) == 1 and len(rotated) == 1
    coalesced = [r for r in results if r.code == "coalesced"]
    assert len(coalesced) == 9 and {(r.action, r.version) for r in coalesced} == {("skipped", rotated[0].version)}


def test_throttling_and_server_errors_are_retried(harness: EngineFactory, vault_control) -> None:
    h = harness([both_slots()], **NO_OVERLAP)
    rotate(h)
    h.acr.add_fault("tokens.get", status=429, retry_after=1)
    h.acr.add_fault("registries.generateCredentials", status=503, retry_after=1)
    vault_control.add_fault("secrets.set", status=429, retry_after=1)
    h.acr.reset_counters()
    vault_control.reset_counters()
    result = rotate(h)
    assert result.action == "rotated", result
    assert h.acr.count("tokens.get") == 3  # the read (throttled once, retried) and the fence after publishing
    assert generate_calls(h) == 2
    assert vault_control.count("secrets.set") == 2


def test_unknown_token_fails_clearly_and_writes_nothing(harness: EngineFactory, vault_control) -> None:
    h = harness([both_slots()])
    vault_control.reset_counters()
    h.acr.reset_counters()
    result = password_rotation.rotate(h.engine, parse_registry_id(h.registry.id), h.registry.login_server,
                                      "no-such-token", force=True)
    assert result.action == "failed" and "not found" in result.reason
    assert generate_calls(h) == 0 and vault_control.count("secrets.set") == 0


def test_foreign_secret_is_refused(harness: EngineFactory) -> None:
    h = harness([both_slots()])
    vault_secret(h).set_secret(secret_name(h.registry.name, TOKEN), "someone else's", tags={"owner": "team-x"})
    h.acr.reset_counters()
    result = rotate(h)
    assert result.action == "refused" and "not managed by the rotator" in result.reason
    assert generate_calls(h) == 0
    assert vault_secret(h).get_secret(secret_name(h.registry.name, TOKEN)).value == "someone else's"


def test_expired_active_password_is_rotated_by_policy(harness: EngineFactory) -> None:
    h = harness([both_slots()])
    rotate(h)
    slot, _, _ = current(h)
    now = datetime.now(UTC)
    h.engine.clock = lambda: now + timedelta(days=89)
    result = rotate(h, force=False)
    assert result.action == "rotated" and result.slot != slot and "renewal window" in result.reason
