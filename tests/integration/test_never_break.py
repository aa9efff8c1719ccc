"""Never break a working credential (issue 10): one test per defect, against the stand-ins with the real SDKs.

Soft-deleted secrets and companions, a stalled run (a checkpoint hook freezes it right before it
publishes, while another run or a person regenerates the slot), drift, the overlap window under
forced requests, companion ownership, orphaned secrets. Logins are checked with skopeo, the real client.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.secrets import SecretClient
from azure.storage.blob import BlobLeaseClient

from devstack.control import Control, password_spec, token_spec
from devstack.seeding import manage_in_vault
from devstack.skopeo import Skopeo
from rotator.core.model import TAG_SLOT_CREATED, NewPassword, PasswordName, companion_name, secret_name
from rotator.core.resource_ids import parse_registry_id
from rotator.core.results import Result
from rotator.entrypoints.cli import EXIT_BUSY, EXIT_FAILED
from rotator.protocols import password_rotation
from rotator.protocols.engine import Engine
from rotator.protocols.scan import run_scan
from rotator.wiring import build_engine
from tests.polling import wait_for

from .conftest import EngineFactory, Harness, as_operator, run_cli, writes
from .test_password_protocol import DAY, NO_OVERLAP, TOKEN, both_slots, current, lease_blob, vault_secret

# --- helpers ----------------------------------------------------------------------------------------


def one_slot(name: str = TOKEN, days: float = 60) -> dict[str, object]:
    return token_spec(name, passwords={"password1": password_spec(time.time() + days * DAY)})


def rotate(h: Harness, engine: Engine | None = None, force: bool = True) -> Result:
    return password_rotation.rotate(engine or h.engine, parse_registry_id(h.registry.id), h.registry.login_server,
                                    TOKEN, force=force)


def acr_values(h: Harness, token: str = TOKEN) -> dict[str, str]:
    return {slot: p.value for slot, p in h.acr.token_passwords(h.registry.name, token).items()}


def of(results: list[Result], token: str = TOKEN) -> Result:
    (result,) = [r for r in results if r.token == token]
    return result


def soft_delete(client: SecretClient, name: str) -> None:
    """Delete like an operator would, then poll until Key Vault shows the name as deleted (asynchronous in Azure)."""
    client.begin_delete_secret(name)

    def visible() -> bool:
        try:
            client.get_deleted_secret(name)
        except ResourceNotFoundError:
            return False
        return True

    wait_for(visible, f"{name} to show as deleted", deadline_seconds=30)


def logs_in(skopeo: Skopeo, h: Harness, value: str, tmp_path: Path, user: str = TOKEN) -> bool:
    return skopeo.login(h.registry.login_server, user, value, tmp_path / "auth.json").returncode == 0


def regenerate_by_hand(h: Harness, slot: PasswordName, days: float = 30) -> NewPassword:
    """`az acr token credential generate --<slot>` by an operator, outside the rotator."""
    operator = as_operator(h.engine).acr
    state = operator.get_token(parse_registry_id(h.registry.id), h.registry.login_server, TOKEN)
    return operator.generate_password(state, slot, datetime.now(UTC) + timedelta(days=days))


# --- defect 1: soft-deleted secrets ----------------------------------------------------------------


@pytest.mark.usefixtures("quick_soft_delete")
def test_a_soft_deleted_secret_is_refused_before_any_arm_write(harness: EngineFactory, vault_control, skopeo: Skopeo,
                                                               tmp_path: Path, monkeypatch) -> None:
    h = harness([both_slots(expiry_days=10)])  # due, both slots populated, active password2
    manage_in_vault(vault_secret(h), h.registry, TOKEN, "password2")
    before = acr_values(h)
    name = secret_name(h.registry.name, TOKEN)
    soft_delete(vault_secret(h), name)
    h.acr.reset_counters()
    vault_control.reset_counters()

    scanned = of(run_scan(h.engine))
    code, out, _ = run_cli(h, monkeypatch, "rotate", h.registry.name, TOKEN, "--force", "--json")

    (forced,) = json.loads(out)["results"]
    assert code == EXIT_FAILED
    for result in (scanned.to_json(), forced):
        assert (result["action"], result["code"]) == ("refused", "soft-deleted-secret")
        assert f"az keyvault secret recover --vault-name {h.engine.vault.name} --name {name}" in result["reason"]
    assert writes(h.acr, vault_control) == []
    assert acr_values(h) == before

    vault_secret(h).begin_recover_deleted_secret(name)
    wait_for(lambda: vault_secret(h).get_secret(name).value is not None, "the recovered secret", deadline_seconds=30)
    assert current(h)[2] == before["password2"] and logs_in(skopeo, h, before["password2"], tmp_path)
    # Due; password1 never reached Key Vault (manage_in_vault published password2), so nothing relies on it.
    assert of(run_scan(h.engine)).action == "rotated"


@pytest.mark.usefixtures("quick_soft_delete")
def test_a_soft_deleted_companion_is_refused_before_any_arm_write(harness: EngineFactory, vault_control) -> None:
    h = harness([one_slot()], ROTATOR_DOCKERCONFIGJSON="true")
    assert of(run_scan(h.engine)).action == "rotated"  # adopted: the password secret and its companion
    companion = companion_name(h.registry.name, TOKEN)
    soft_delete(vault_secret(h), companion)
    h.acr.reset_counters()
    vault_control.reset_counters()

    results = [of(run_scan(h.engine)), rotate(h)]

    assert {(r.action, r.code) for r in results} == {("refused", "soft-deleted-secret")}
    assert all(f"--name {companion}" in r.reason for r in results)
    assert writes(h.acr, vault_control) == []


# --- defect 2: a stalled run never leaves a dead credential current ----------------------------------


def stall_once(h: Harness, meanwhile) -> list[object]:
    """Freeze the harness engine's next run right before it publishes: its lease runs out (broken, standing
    for the 60 s expiry) and `meanwhile` runs. Returns what `meanwhile` returned, once it has run."""
    done: list[object] = []

    def checkpoint(step: str) -> None:
        if step == "publishing" and not done:
            BlobLeaseClient(lease_blob(h)).break_lease(lease_break_period=0)
            done.append(meanwhile())

    h.engine.checkpoint = checkpoint
    return done


def test_a_stalled_run_superseded_by_a_later_run_leaves_that_runs_credential_current(
        harness: EngineFactory, skopeo: Skopeo, tmp_path: Path) -> None:
    h = harness([one_slot()], **NO_OVERLAP)
    manage_in_vault(vault_secret(h), h.registry, TOKEN)
    later = build_engine(h.engine.settings)  # another instance, its own clients
    competing = stall_once(h, lambda: rotate(h, engine=later))
    h.acr.reset_counters()

    stale = rotate(h)

    assert competing and competing[0].action == "rotated"  # type: ignore[attr-defined]
    assert (stale.action, stale.code) == ("failed", "superseded") and "superseded after publishing" in stale.reason
    slot, _, value = current(h)
    assert value == acr_values(h)[slot] and logs_in(skopeo, h, value, tmp_path)
    assert h.acr.count("registries.generateCredentials") == 2


def test_a_stalled_run_superseded_by_hand_restores_the_previous_credential(harness: EngineFactory, skopeo: Skopeo,
                                                                           tmp_path: Path) -> None:
    """No later version to fall back on: the version before (published without the creation tag) is
    re-published once it is seen to log in."""
    h = harness([one_slot()], **NO_OVERLAP)
    manage_in_vault(vault_secret(h), h.registry, TOKEN)
    previous = acr_values(h)["password1"]
    stall_once(h, lambda: regenerate_by_hand(h, "password2"))
    stale = rotate(h)

    assert (stale.action, stale.code) == ("failed", "superseded")
    assert current(h)[::2] == ("password1", previous) and logs_in(skopeo, h, previous, tmp_path)


# --- defect 3: drift --------------------------------------------------------------------------------


def test_drift_is_reported_and_healed_by_rotating_the_other_slot(harness: EngineFactory, skopeo: Skopeo,
                                                                 tmp_path: Path, monkeypatch) -> None:
    h = harness([both_slots()])
    assert of(run_scan(h.engine)).slot == "password2"  # adopted: the publish records password2's creationTime
    assert TAG_SLOT_CREATED in (vault_secret(h).get_secret(secret_name(h.registry.name, TOKEN)).properties.tags or {})
    by_hand = regenerate_by_hand(h, "password2")
    h.acr.reset_counters()

    code, out, _ = run_cli(h, monkeypatch, "status", "--json")
    (row,) = [r for r in json.loads(out)["results"] if r["token"] == TOKEN]
    assert code == 0 and (row["action"], row["code"], row["slot"]) == ("drift", "drift", "password1")
    assert h.acr.count("tokens.get") == 0  # found from the token listing the scan makes anyway

    healed = of(run_scan(h.engine))

    assert (healed.action, healed.code, healed.slot) == ("drift", "drift", "password1") and healed.version
    slot, version, value = current(h)
    assert (slot, version) == ("password1", healed.version) and logs_in(skopeo, h, value, tmp_path)
    assert acr_values(h)["password2"] == by_hand.value, "the slot someone regenerated is never touched"
    assert of(run_scan(h.engine)).action == "skipped"


def test_drift_is_found_by_a_single_token_run(harness: EngineFactory, monkeypatch) -> None:
    h = harness([one_slot()])
    rotate(h)  # adopted into password2
    regenerate_by_hand(h, "password2")

    code, out, _ = run_cli(h, monkeypatch, "rotate", h.registry.name, TOKEN, "--json")

    (result,) = json.loads(out)["results"]
    assert code == 0 and (result["action"], result["slot"]) == ("drift", "password1")


def test_a_version_published_before_the_creation_tag_is_not_drift(harness: EngineFactory) -> None:
    """Documented choice: no tag means "unknown"; the next publish records it."""
    h = harness([one_slot()])
    manage_in_vault(vault_secret(h), h.registry, TOKEN)  # no acr-slot-created tag, as published by older versions
    regenerate_by_hand(h, "password1", days=60)
    assert of(run_scan(h.engine)).action == "skipped"


# --- defect 4: forced requests and the overlap window --------------------------------------------------


def test_a_forced_rotation_never_cuts_the_overlap_window_short(harness: EngineFactory, skopeo: Skopeo,
                                                              tmp_path: Path, monkeypatch) -> None:
    h = harness([one_slot()])
    manage_in_vault(vault_secret(h), h.registry, TOKEN)
    pre_burst = acr_values(h)["password1"]
    first = rotate(h)
    assert (first.action, first.slot) == ("rotated", "password2")  # the standby was empty: nothing to protect
    h.acr.reset_counters()

    code, out, _ = run_cli(h, monkeypatch, "rotate", h.registry.name, TOKEN, "--force", "--json")

    (second,) = json.loads(out)["results"]
    assert code == EXIT_BUSY
    assert (second["action"], second["code"], second["slot"]) == ("waiting", "overlap", "password1")
    assert "becomes rotatable at" in second["reason"] and second["retry_at"]
    assert datetime.fromisoformat(second["retry_at"]) > datetime.now(UTC) + timedelta(hours=23)
    assert h.acr.count("registries.generateCredentials") == 0
    assert logs_in(skopeo, h, pre_burst, tmp_path) and logs_in(skopeo, h, current(h)[2], tmp_path)


# The window protects what was current in Key Vault; a standby no version of the secret held protects nothing.


def test_a_due_token_whose_standby_never_reached_key_vault_rotates_at_once(harness: EngineFactory, skopeo: Skopeo,
                                                                          tmp_path: Path, monkeypatch) -> None:
    """Published by hand a minute ago with password1, while password2 already existed and was never published."""
    h = harness([both_slots(expiry_days=10)])
    manage_in_vault(vault_secret(h), h.registry, TOKEN, "password1")
    held = acr_values(h)["password1"]
    code, out, _ = run_cli(h, monkeypatch, "status", "--json")
    assert code == 0 and json.loads(out)["results"][0]["action"] == "would-rotate"

    result = of(run_scan(h.engine))

    assert (result.action, result.slot) == ("rotated", "password2"), result
    assert "password2 was never published in Key Vault" in result.reason
    assert current(h)[0] == "password2" and logs_in(skopeo, h, current(h)[2], tmp_path)
    assert logs_in(skopeo, h, held, tmp_path)  # the credential consumers hold keeps working


def test_after_adoption_only_a_slot_key_vault_held_waits(harness: EngineFactory, skopeo: Skopeo,
                                                        tmp_path: Path) -> None:
    h = harness([token_spec(TOKEN, passwords={"password2": password_spec(time.time() + 60 * DAY)})])
    adopted = rotate(h, force=False)
    assert (adopted.action, adopted.slot) == ("rotated", "password1")  # adoption fills the empty slot
    published = current(h)[2]

    never_published = rotate(h)  # forced: password2 was in ACR before, never in Key Vault
    held = rotate(h)  # forced again: password1 was current in Key Vault until a moment ago

    assert (never_published.action, never_published.slot) == ("rotated", "password2"), never_published
    assert (held.action, held.code, held.slot) == ("waiting", "overlap", "password1"), held
    assert logs_in(skopeo, h, published, tmp_path) and logs_in(skopeo, h, current(h)[2], tmp_path)


def test_unreadable_versions_keep_the_wait(harness: EngineFactory, vault_control: Control,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rotator")
    h = harness([both_slots(expiry_days=10)])
    manage_in_vault(vault_secret(h), h.registry, TOKEN, "password1")
    h.acr.reset_counters()
    vault_control.add_fault("secrets.list_versions", status=403, code="Forbidden", times=None)

    result = of(run_scan(h.engine))

    assert (result.action, result.code) == ("waiting", "overlap")
    assert h.acr.count("registries.generateCredentials") == 0
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if "versions-unreadable" in r.getMessage()]
    assert line["token"] == TOKEN and "403" in line["reason"] and "waiting for the overlap window" in line["reason"]


# --- defect 5: the .dockerconfigjson companion follows the ownership rules -----------------------------


def test_a_foreign_secret_at_the_companion_name_is_never_overwritten(harness: EngineFactory, vault_control) -> None:
    h = harness([one_slot()], ROTATOR_DOCKERCONFIGJSON="true")
    manage_in_vault(vault_secret(h), h.registry, TOKEN)  # managed and fresh: the scan skips it
    companion = companion_name(h.registry.name, TOKEN)
    vault_secret(h).set_secret(companion, "team-x config", tags={"owner": "team-x"})
    h.acr.reset_counters()
    vault_control.reset_counters()

    results = [of(run_scan(h.engine)), rotate(h)]

    assert {(r.action, r.code) for r in results} == {("refused", "foreign-secret")}
    assert vault_secret(h).get_secret(companion).value == "team-x config"
    assert writes(h.acr, vault_control) == []


def test_a_companion_name_that_is_another_tokens_secret_is_refused(harness: EngineFactory, skopeo: Skopeo,
                                                                   tmp_path: Path) -> None:
    other = f"{TOKEN}-dockerconfigjson"  # a legal token name whose password secret is ci-pull's companion name
    h = harness([one_slot(), one_slot(other)], ROTATOR_DOCKERCONFIGJSON="true")
    before = acr_values(h)
    assert acr_values(h, other) != before

    results = run_scan(h.engine)

    assert (of(results).action, of(results).code) == ("refused", "companion-conflict")
    assert of(results, other).action == "rotated"
    assert acr_values(h) == before  # nothing written for ci-pull
    with pytest.raises(ResourceNotFoundError):
        vault_secret(h).get_secret(secret_name(h.registry.name, TOKEN))
    value = current(h, other)[2]
    assert logs_in(skopeo, h, value, tmp_path, user=other)


def test_a_refused_secrets_value_is_never_copied_into_a_companion(harness: EngineFactory) -> None:
    h = harness([one_slot()], ROTATOR_DOCKERCONFIGJSON="true")
    vault_secret(h).set_secret(secret_name(h.registry.name, TOKEN), "someone else's",
                          tags={"acr-registry": "fabrikam01", "acr-token": TOKEN, "acr-slot": "password1"})

    refused = of(run_scan(h.engine))

    assert (refused.action, refused.code) == ("refused", "foreign-secret")
    with pytest.raises(ResourceNotFoundError):
        vault_secret(h).get_secret(companion_name(h.registry.name, TOKEN))


# --- defect 11: orphaned secrets ----------------------------------------------------------------------


def test_a_secret_whose_token_was_deleted_is_reported_orphaned(harness: EngineFactory, vault_control,
                                                               monkeypatch) -> None:
    h = harness([one_slot(), one_slot("kept-token")])
    run_scan(h.engine)
    registry = parse_registry_id(h.registry.id)
    operator = as_operator(h.engine).acr  # the app's role cannot delete tokens
    operator._client(registry.subscription).tokens.begin_delete(registry.resource_group, registry.name, TOKEN,
                                                                polling_interval=0).result()
    h.acr.reset_counters()
    vault_control.reset_counters()

    orphan = of(run_scan(h.engine))
    code, out, _ = run_cli(h, monkeypatch, "status", "--json")

    assert (orphan.action, orphan.code) == ("orphaned", "orphaned")
    assert secret_name(h.registry.name, TOKEN) in orphan.reason
    assert code == 0 and [r["action"] for r in json.loads(out)["results"] if r["token"] == TOKEN] == ["orphaned"]
    assert writes(h.acr, vault_control) == []
    assert vault_secret(h).get_secret(secret_name(h.registry.name, TOKEN)).value


def test_settings_that_cannot_honour_the_overlap_are_refused_at_start(harness: EngineFactory, monkeypatch) -> None:
    h = harness([one_slot()])
    code, out, err = run_cli(h, monkeypatch, "scan", ROTATOR_VALIDITY_DAYS="2", ROTATOR_RENEW_BEFORE_DAYS="1",
                             ROTATOR_MIN_OVERLAP_HOURS="48")
    assert code == 2 and out == "" and "ROTATOR_MIN_OVERLAP_HOURS" in err
