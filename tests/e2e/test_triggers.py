"""Each trigger invoked the way the worker invokes it, end to end against the stand-ins.

Payloads are shaped like the host's and decoded by azure.functions' own converters (timerTrigger,
eventGridTrigger, queueTrigger); the decoded object is passed to the real function object. The timer
and Event Grid put work on the rotation queue; each test has its own queue, whose messages the queue
trigger runs (`RotationQueue.drain`). Rotations are counted with the ACR stand-in's generateCredentials
counter and read back from Key Vault.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import pytest

from devstack.control import Control
from rotator.core.resource_ids import parse_registry_id
from rotator.entrypoints.event_grid import TransientEventError
from rotator.entrypoints.timer import ScanIncomplete
from tests.conftest import REFERENCE
from tests.e2e.conftest import (
    ManagedToken,
    RotationQueue,
    World,
    decoded,
    import_vault_certificate,
    registries_setting,
    thumbprint,
    token_thumbprints,
    unique,
)
from tests.log_lines import rotator_lines

EVENTS = REFERENCE / "keyvault-events"
SAMPLE_FILES = sorted(p.name for p in EVENTS.glob("*.json"))
NEAR_EXPIRY = "kv_secret_near_expiry.eventgrid.DERIVED.json"
NEW_VERSION = "kv_secret_new_version_created.eventgrid.rest-api-specs.json"
DUE_DAYS = 10.0  # inside the default 30-day renewal window
FRESH_DAYS = 80.0


@pytest.fixture(autouse=True)
def _rotator_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rotator")


# --- how the host delivers ----------------------------------------------------------------------------


@pytest.fixture
def deliver(function_named: Callable[[str], Any], rotation_queue: RotationQueue) -> Callable[[dict[str, Any]], None]:
    """Deliver one event (the host splits Event Grid batches into one invocation per event), then run what it
    queued through the queue trigger."""
    keyvault_events = function_named("keyvault_events").get_user_function()

    def deliver_and_run(event: dict[str, Any]) -> None:
        keyvault_events(event=decoded("eventGridTrigger", event))
        rotation_queue.drain()

    return deliver_and_run


def sample(name: str) -> list[dict[str, Any]]:
    events = json.loads((EVENTS / name).read_text())
    return events if isinstance(events, list) else [events]


def event_type(event: dict[str, Any]) -> str:
    return str(event.get("eventType") or event.get("type"))


def pointed_at(event: dict[str, Any], vault_url: str, name: str, version: str) -> dict[str, Any]:
    """The sample with its object moved into our stand-in vault: data.Id, ObjectName, Version, subject."""
    moved = copy.deepcopy(event)
    data = moved["data"]
    collection = "certificates" if data["ObjectType"].lower() == "certificate" else "secrets"
    data.update(Id=f"{vault_url.rstrip('/')}/{collection}/{name}/{version}", ObjectName=name, Version=version)
    moved["subject"] = name
    return moved


def last_outcome(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    lines = rotator_lines(caplog, "event")
    assert lines, "the event handler logged no line"
    return lines[-1]


def queued_actions(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What each queued run did, in order (the queue trigger's line per message)."""
    return [line["action"] for line in rotator_lines(caplog, "queue-message")]


class Rotations:
    """generateCredentials calls made by one block of the test (the stand-in counts every call)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.before = world.generate_calls()

    @property
    def made(self) -> int:
        return self.world.generate_calls() - self.before


@pytest.fixture
def rotations(world: World) -> Callable[[], Rotations]:
    return lambda: Rotations(world)


@pytest.fixture
def vault_url(world: World) -> str:
    return os.environ["ROTATOR_VAULT_URL"]


def near_expiry(token: ManagedToken, vault_url: str, version: str | None = None) -> dict[str, Any]:
    return pointed_at(sample(NEAR_EXPIRY)[0], vault_url, token.secret_name, version or token.version)


# --- timer --------------------------------------------------------------------------------------------


def test_timer_enqueues_due_tokens_and_the_queue_rotates_them(world: World, tick: Callable[[], None],
                                                              rotation_queue: RotationQueue,
                                                              rotations: Callable[[], Rotations]) -> None:
    registry = unique("e2etimer")
    registry_id = world.seed_registry(registry)
    due = world.managed_token(DUE_DAYS, registry=registry)
    fresh = world.managed_token(FRESH_DAYS, registry=registry)
    fresh_passwords = world.passwords(registry, fresh.name)

    with registries_setting(registry_id, ROTATOR_QUEUE=rotation_queue.name):
        counted = rotations()
        tick()
        assert counted.made == 0 and rotation_queue.length() == 1  # the timer only plans and enqueues
        rotation_queue.drain()

    assert counted.made == 1 and rotation_queue.errors == []
    version, slot = due.current()
    assert version != due.version and slot == "password2"
    assert fresh.current() == (fresh.version, "password1")
    assert world.passwords(registry, fresh.name) == fresh_passwords


def test_a_message_for_a_busy_token_is_requeued_without_spending_a_delivery(
        world: World, tick: Callable[[], None], rotation_queue: RotationQueue, rotations: Callable[[], Rotations],
        caplog: pytest.LogCaptureFixture) -> None:
    import function_app

    registry = unique("e2ebusy")
    registry_id = world.seed_registry(registry)
    due = world.managed_token(DUE_DAYS, registry=registry)

    with registries_setting(registry_id, ROTATOR_QUEUE=rotation_queue.name):
        counted = rotations()
        tick()
        with function_app.engine().locks.hold(parse_registry_id(registry_id), due.name):
            rotation_queue.run_once()

    assert counted.made == 0 and rotation_queue.errors == []  # returned: nothing for the host to retry
    assert queued_actions(caplog) == ["busy"]
    requeued = rotator_lines(caplog, "queue-message")[-1]
    assert requeued["outcome"] == "requeued" and requeued["dequeue_count"] == 1 and requeued["delay_seconds"] > 0
    assert rotation_queue.length() == 1  # the copy, invisible until its delay has passed


def test_timer_raises_for_the_retry_policy_when_enqueueing_fails(world: World, tick: Callable[[], None],
                                                                 rotation_queue: RotationQueue,
                                                                 storage_faults: Control) -> None:
    registry = unique("e2eenqueue")
    registry_id = world.seed_registry(registry)
    due = world.managed_token(DUE_DAYS, registry=registry)

    with registries_setting(registry_id, ROTATOR_QUEUE=rotation_queue.name, ROTATOR_CALL_TIMEOUT_SECONDS="5"):
        storage_faults.add_fault("messages.put", status=503, times=None)
        with pytest.raises(ScanIncomplete, match=f"{due.name}.*could not enqueue.*503"):
            tick()
        storage_faults.clear_faults()
        tick()  # the retry
        rotation_queue.drain()

    assert due.current()[1] == "password2"


# --- Event Grid: secrets ------------------------------------------------------------------------------


def test_near_expiry_for_the_current_version_rotates_once(world: World, deliver: Callable[[dict[str, Any]], None],
                                                          rotations: Callable[[], Rotations], vault_url: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    token = world.managed_token(DUE_DAYS)
    event = near_expiry(token, vault_url)
    counted = rotations()

    deliver(event)
    assert last_outcome(caplog)["outcome"] == "queued" and queued_actions(caplog) == ["rotated"]
    deliver(event)  # Event Grid delivers at least once: the duplicate names a version no longer current

    assert counted.made == 1
    assert "stale" in last_outcome(caplog)["reason"] and queued_actions(caplog) == ["rotated"]
    version, slot = token.current()
    assert version != token.version and slot == "password2"


def test_an_event_for_an_older_version_rotates_nothing(world: World, deliver: Callable[[dict[str, Any]], None],
                                                       rotations: Callable[[], Rotations], vault_url: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    older = world.managed_token(DUE_DAYS)
    newer = world.managed_token(DUE_DAYS, name=older.name)  # a newer version of the same secret
    counted = rotations()

    deliver(near_expiry(older, vault_url))

    assert counted.made == 0
    assert last_outcome(caplog)["outcome"] == "skipped"
    assert newer.current() == (newer.version, "password1")


@pytest.mark.parametrize("name", ["kv_secret_new_version_created.eventgrid.rest-api-specs.json",
                                  "kv_secret_new_version_created.cloudevents.rest-api-specs.json"])
def test_secret_new_version_created_is_ignored(world: World, deliver: Callable[[dict[str, Any]], None],
                                               rotations: Callable[[], Rotations], vault_url: str,
                                               caplog: pytest.LogCaptureFixture, name: str) -> None:
    """Our own publishing raises it: acting on it would rotate again after every rotation."""
    token = world.managed_token(DUE_DAYS)
    counted = rotations()

    deliver(pointed_at(sample(name)[0], vault_url, token.secret_name, token.version))

    assert counted.made == 0
    assert last_outcome(caplog)["outcome"] == "ignored"
    assert token.current()[0] == token.version


def test_a_secret_without_the_rotators_tags_is_ignored(world: World, deliver: Callable[[dict[str, Any]], None],
                                                       rotations: Callable[[], Rotations], vault_url: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    secret = world.secrets.set_secret(unique("someone-elses-"), "not ours")
    counted = rotations()

    deliver(pointed_at(sample(NEAR_EXPIRY)[0], vault_url, str(secret.name), str(secret.properties.version)))

    assert counted.made == 0
    assert "not managed" in last_outcome(caplog)["reason"]


def test_an_event_from_another_vault_is_ignored(world: World, deliver: Callable[[dict[str, Any]], None],
                                                caplog: pytest.LogCaptureFixture) -> None:
    deliver(sample(NEAR_EXPIRY)[0])  # untouched: https://sample-kv.vault.azure.net/...

    assert "another vault" in last_outcome(caplog)["reason"]


# --- every reference sample, and the variants real payloads show --------------------------------------


def _outcome_for(world: World, event: dict[str, Any], vault_url: str) -> tuple[dict[str, Any], Callable[[], None]]:
    """The sample pointed at fresh stand-in data of its kind, and a check of the expected effect."""
    kind = event_type(event).rsplit(".", 1)[-1]
    if kind in ("SecretNearExpiry", "SecretExpired"):
        token = world.managed_token(DUE_DAYS if kind == "SecretNearExpiry" else -1.0)

        def rotated() -> None:
            assert token.current()[1] == "password2"

        return pointed_at(event, vault_url, token.secret_name, token.version), rotated
    if kind == "SecretNewVersionCreated":
        token = world.managed_token(DUE_DAYS)

        def untouched() -> None:
            assert token.current()[0] == token.version

        return pointed_at(event, vault_url, token.secret_name, token.version), untouched
    if kind.startswith("Certificate"):
        token = world.managed_token(FRESH_DAYS)
        name = unique("cert-")
        certificate = import_vault_certificate(world, name, token.registry, token.name)
        version = world.certificates.get_certificate(name).properties.version

        def on_token() -> None:
            assert thumbprint(certificate) in token_thumbprints(world.registry_id, token.name)

        return pointed_at(event, vault_url, name, str(version)), on_token
    raise AssertionError(f"no expectation for {event_type(event)}: the sample set grew; decide what it should do")


EXPECTED = {"SecretNearExpiry": "queued", "SecretExpired": "queued", "SecretNewVersionCreated": "ignored",
            "CertificateNewVersionCreated": "queued", "CertificateNearExpiry": "queued"}


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_every_reference_sample_is_handled_or_ignored_as_specified(
        world: World, deliver: Callable[[dict[str, Any]], None], vault_url: str,
        caplog: pytest.LogCaptureFixture, name: str) -> None:
    for event in sample(name):
        pointed, check = _outcome_for(world, event, vault_url)
        deliver(pointed)

        assert last_outcome(caplog)["outcome"] == EXPECTED[event_type(event).rsplit(".", 1)[-1]]
        check()


def _lowercase_data_keys(event: dict[str, Any]) -> None:
    event["data"] = {key.lower(): value for key, value in event["data"].items()}


def _padded_data_keys_and_values(event: dict[str, Any]) -> None:
    event["data"] = {f" {key}\t": f"  {value} " if isinstance(value, str) else value
                     for key, value in event["data"].items()}


def _numbers(event: dict[str, Any]) -> None:
    event["data"].update(NBF=1559081980.5, EXP=1559082102)


def _iso_and_null(event: dict[str, Any]) -> None:
    event["data"].update(NBF=None, EXP="2019-05-28T22:21:42Z")


def _stringified_data(event: dict[str, Any]) -> None:
    event["data"] = json.dumps(event["data"])


def _name_only_in_subject(event: dict[str, Any]) -> None:
    for key in ("Id", "ObjectName", "VaultName"):
        event["data"].pop(key)


def _camel_case(event: dict[str, Any]) -> None:
    event["data"] = {key[0].lower() + key[1:]: value for key, value in event["data"].items()}


def _padded_event_type(event: dict[str, Any]) -> None:
    event["eventType"] = " microsoft.keyvault.secretnearexpiry "


VARIANTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "lowercase data keys": _lowercase_data_keys,
    "camelCase data keys": _camel_case,
    "whitespace in data keys and values": _padded_data_keys_and_values,
    "NBF/EXP as numbers": _numbers,
    "NBF null, EXP ISO text": _iso_and_null,
    "data as a JSON string": _stringified_data,
    "object name only in subject": _name_only_in_subject,
    "event type padded and lowercase": _padded_event_type,
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_payload_variants_rotate_once(world: World, deliver: Callable[[dict[str, Any]], None], vault_url: str,
                                      rotations: Callable[[], Rotations], caplog: pytest.LogCaptureFixture,
                                      variant: str) -> None:
    token = world.managed_token(DUE_DAYS)
    event = near_expiry(token, vault_url)
    VARIANTS[variant](event)
    counted = rotations()

    deliver(event)
    deliver(event)

    assert counted.made == 1
    assert token.current()[1] == "password2"


def test_cloudevents_with_other_key_casing_still_reach_the_handler(
        world: World, deliver: Callable[[dict[str, Any]], None], vault_url: str,
        rotations: Callable[[], Rotations]) -> None:
    """The converter keeps unknown CloudEvents attributes as extensions; the parser matches keys loosely."""
    token = world.managed_token(DUE_DAYS)
    event = pointed_at(sample("kv_secret_near_expiry.cloudevents.DERIVED.json")[0], vault_url, token.secret_name,
                       token.version)
    event["Type"] = event.pop("type")
    event[" Subject "] = event.pop("subject")
    counted = rotations()

    deliver(event)

    assert counted.made == 1


def test_event_grid_envelope_keys_in_other_casing_are_acknowledged_as_malformed(
        world: World, deliver: Callable[[dict[str, Any]], None], vault_url: str,
        rotations: Callable[[], Rotations], caplog: pytest.LogCaptureFixture) -> None:
    """The Event Grid converter reads `eventType` exactly; a forwarder's `EventType` arrives as no type at all.

    Permanent: acknowledged (not raised), so Event Grid does not retry it for 24 hours.
    """
    token = world.managed_token(DUE_DAYS)
    event = near_expiry(token, vault_url)
    event["EventType"] = event.pop("eventType")
    counted = rotations()

    deliver(event)

    assert counted.made == 0
    assert "malformed" in last_outcome(caplog)["reason"]


# --- certificates ---------------------------------------------------------------------------------------


def test_certificate_event_twice_pushes_once(world: World, deliver: Callable[[dict[str, Any]], None],
                                             vault_url: str, caplog: pytest.LogCaptureFixture) -> None:
    token = world.managed_token(FRESH_DAYS)
    name = unique("cert-")
    certificate = import_vault_certificate(world, name, token.registry, token.name)
    version = str(world.certificates.get_certificate(name).properties.version)
    event = pointed_at(sample("kv_certificate_new_version_created.eventgrid.DERIVED.json")[0], vault_url, name,
                       version)

    deliver(event)
    deliver(event)

    outcomes = [line["outcome"] for line in rotator_lines(caplog, "event")]
    assert outcomes == ["queued", "queued"] and queued_actions(caplog) == ["certificate-updated", "unchanged"]
    assert thumbprint(certificate) in token_thumbprints(world.registry_id, token.name)


def test_an_untagged_certificate_is_ignored(world: World, deliver: Callable[[dict[str, Any]], None],
                                            vault_url: str, caplog: pytest.LogCaptureFixture) -> None:
    name = unique("cert-")
    import_vault_certificate(world, name, None, None)
    version = str(world.certificates.get_certificate(name).properties.version)

    deliver(pointed_at(sample("kv_certificate_near_expiry.eventgrid.DERIVED.json")[0], vault_url, name, version))

    assert "not mapped" in last_outcome(caplog)["reason"]


# --- transient raises, permanent returns ------------------------------------------------------------------


def test_an_event_that_cannot_be_queued_raises_so_event_grid_redelivers(
        world: World, function_named: Callable[[str], Any], rotation_queue: RotationQueue,
        rotations: Callable[[], Rotations], vault_url: str, storage_faults: Control) -> None:
    """The handler only enqueues (Event Grid waits 30 s); a Storage failure doing so is transient."""
    keyvault_events = function_named("keyvault_events").get_user_function()
    token = world.managed_token(DUE_DAYS)
    event = near_expiry(token, vault_url)
    counted = rotations()

    with registries_setting(world.registry_id, ROTATOR_QUEUE=rotation_queue.name, ROTATOR_CALL_TIMEOUT_SECONDS="5"):
        storage_faults.add_fault("messages.put", status=503, times=None)
        with pytest.raises(TransientEventError, match=r"rotation queue.*503"):
            keyvault_events(event=decoded("eventGridTrigger", event))
        storage_faults.clear_faults()
        keyvault_events(event=decoded("eventGridTrigger", event))  # the redelivery
        rotation_queue.drain()

    assert counted.made == 1
    assert token.current()[1] == "password2"


@pytest.mark.usefixtures("shortest_call_bound")
def test_a_lease_release_failure_after_publishing_is_acknowledged(
        world: World, deliver: Callable[[dict[str, Any]], None], rotations: Callable[[], Rotations], vault_url: str,
        storage_faults: Control, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 10 defect 6: the rotation published; Event Grid must not redeliver (that would rotate again)."""
    token = world.managed_token(DUE_DAYS)
    storage_faults.add_fault("lease.release", drop=True, times=None)
    counted = rotations()

    deliver(near_expiry(token, vault_url))  # returns: acknowledged

    assert counted.made == 1 and token.current()[1] == "password2"
    assert [line["token"] for line in rotator_lines(caplog, "lease-release-failed")] == [token.name]


def test_a_registry_outside_the_settings_is_acknowledged(world: World, deliver: Callable[[dict[str, Any]], None],
                                                         rotations: Callable[[], Rotations], vault_url: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    outside = unique("e2eoutside")
    world.seed_registry(outside)
    token = world.managed_token(DUE_DAYS, registry=outside)
    counted = rotations()

    deliver(near_expiry(token, vault_url))  # returns: no retry can make it ours

    assert counted.made == 0
    assert "not managed here" in last_outcome(caplog)["reason"]


def test_a_malformed_event_is_acknowledged(world: World, deliver: Callable[[dict[str, Any]], None],
                                           caplog: pytest.LogCaptureFixture) -> None:
    event = sample(NEAR_EXPIRY)[0]
    event["data"]["Id"] = "not a url"

    deliver(event)

    assert "malformed" in last_outcome(caplog)["reason"]
