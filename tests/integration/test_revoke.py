"""`revoke` (leaked credential) against the stand-ins: what logs in afterwards is checked with skopeo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from azure.storage.blob import BlobLeaseClient

from devstack.seeding import manage_in_vault
from devstack.skopeo import Skopeo
from rotator.core.model import TAG_REVOKING, companion_name, secret_name
from tests.polling import wait_for

from .conftest import EngineFactory, run_cli, writes
from .test_never_break import acr_values, logs_in
from .test_password_protocol import TOKEN, both_slots, current, lease_blob, vault_secret


def revoked(h, monkeypatch, *args: str, **settings: str) -> tuple[int, dict[str, object]]:
    code, out, _ = run_cli(h, monkeypatch, "revoke", h.registry.name, TOKEN, "--json", *args, **settings)
    (result,) = json.loads(out)["results"]
    return code, result


def test_revoke_publishes_a_fresh_password_and_the_leaked_one_is_refused(harness: EngineFactory, skopeo: Skopeo,
                                                                         tmp_path: Path, monkeypatch) -> None:
    h = harness([both_slots()], ROTATOR_DOCKERCONFIGJSON="true")
    manage_in_vault(vault_secret(h), h.registry, TOKEN)  # published just now: a forced rotation would have to wait
    leaked = acr_values(h)["password1"]

    code, result = revoked(h, monkeypatch, ROTATOR_DOCKERCONFIGJSON="true")

    assert code == 0 and (result["action"], result["slot"]) == ("revoked", "password2")
    assert "password1 was removed" in str(result["reason"]) and "logged in just now" in str(result["reason"])
    slot, version, value = current(h)
    assert (slot, version) == ("password2", result["version"]) and set(acr_values(h)) == {"password2"}
    assert not logs_in(skopeo, h, leaked, tmp_path), "the leaked value must be refused by the registry"
    assert logs_in(skopeo, h, value, tmp_path)
    companion = json.loads(vault_secret(h).get_secret(companion_name(h.registry.name, TOKEN)).value or "{}")
    assert companion["auths"][h.registry.login_server]["password"] == value


def test_revoking_the_standby_only_removes_it(harness: EngineFactory, vault_control, skopeo: Skopeo, tmp_path: Path,
                                              monkeypatch) -> None:
    h = harness([both_slots()])
    manage_in_vault(vault_secret(h), h.registry, TOKEN)
    standby = acr_values(h)["password2"]
    _, version, value = current(h)
    h.acr.reset_counters()

    code, result = revoked(h, monkeypatch, "--slot", "password2")

    assert code == 0 and (result["action"], result["slot"], result["version"]) == ("revoked", "password1", version)
    assert h.acr.count("registries.generateCredentials") == 0 and set(acr_values(h)) == {"password1"}
    assert not logs_in(skopeo, h, standby, tmp_path) and logs_in(skopeo, h, value, tmp_path)


def test_a_dry_run_revoke_writes_nothing(harness: EngineFactory, vault_control, monkeypatch) -> None:
    h = harness([both_slots()])
    manage_in_vault(vault_secret(h), h.registry, TOKEN)
    h.acr.reset_counters()
    vault_control.reset_counters()

    code, result = revoked(h, monkeypatch, "--dry-run")

    assert code == 0 and (result["action"], result["slot"]) == ("would-revoke", "password2")
    assert writes(h.acr, vault_control) == []


def test_a_crash_between_publish_and_removal_leaves_a_working_credential_and_revoke_again_finishes(
        harness: EngineFactory, skopeo: Skopeo, tmp_path: Path, monkeypatch) -> None:
    """A real crash: the CLI is killed with SIGKILL while its token PATCH (the removal) is in flight."""
    h = harness([both_slots()])
    manage_in_vault(vault_secret(h), h.registry, TOKEN)
    leaked = acr_values(h)["password1"]
    h.acr.add_fault("tokens.update", latency_ms=30_000, drop=True, times=None)  # the removal never lands
    env = {**os.environ, **h.stack.env, "ROTATOR_REGISTRIES": h.registry.id}
    victim = subprocess.Popen([sys.executable, "-m", "rotator", "revoke", h.registry.name, TOKEN], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: h.acr.count("tokens.update") >= 1, "the removal to be sent", deadline_seconds=120)
    finally:
        victim.kill()
        victim.wait()
    h.acr.clear_faults()

    slot, version, value = current(h)
    properties = vault_secret(h).get_secret(secret_name(h.registry.name, TOKEN)).properties
    assert slot == "password2" and (properties.tags or {}).get(TAG_REVOKING) == "password1"
    assert logs_in(skopeo, h, value, tmp_path), "after the publish Key Vault holds a working credential"
    BlobLeaseClient(lease_blob(h)).break_lease(lease_break_period=0)  # stands in for the 60 s lease expiry
    h.acr.reset_counters()

    code, result = revoked(h, monkeypatch)

    assert code == 0 and result["action"] == "revoked" and "interrupted revoke" in str(result["reason"])
    assert h.acr.count("registries.generateCredentials") == 0 and current(h)[1] == version
    assert not logs_in(skopeo, h, leaked, tmp_path) and logs_in(skopeo, h, value, tmp_path)
