"""The rotation queue's message schema and what becomes of each message (rotator/core/work.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from rotator.core.resource_ids import parse_registry_id
from rotator.core.results import Result
from rotator.core.work import (
    HOST_POISONED,
    MAX_DEQUEUE_COUNT,
    MAX_MESSAGE_BYTES,
    MAX_REQUEUES,
    REQUEUE_DELAY_SECONDS,
    MalformedMessage,
    UnknownSchema,
    WorkItem,
    certificate_item,
    decode,
    dispose,
    password_item,
    poison_entry,
    poison_text,
)

REGISTRY_ID = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/" \
              "Microsoft.ContainerRegistry/registries/contoso01"
REGISTRY = parse_registry_id(REGISTRY_ID)
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def message(**changes: Any) -> str:
    document: dict[str, Any] = {"schema": 1, "kind": "password", "registryId": REGISTRY_ID, "token": "ci-pull",
                                "source": "timer", "requestedAt": "2026-12-01T06:00:00Z", "force": False,
                                "eventVersion": None, "requeues": 0}
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not ...})


def test_the_documented_message_is_what_the_timer_sends() -> None:
    item = password_item(REGISTRY, "ci-pull", "timer", NOW)

    assert json.loads(item.encode()) == json.loads(message())
    assert decode(item.encode()) == item


@pytest.mark.parametrize("item", [
    password_item(REGISTRY, "ci-pull", "event", NOW, event_version="0123abcd" * 4, event_id="evt-1"),
    password_item(REGISTRY, "ci-pull", "http", NOW, force=True),
    certificate_item(REGISTRY, "ci-pull", "acr-contoso01-ci-pull-cert", "event", NOW, event_id="e"),
    password_item(REGISTRY, "ci-pull", "cli", NOW).requeued(),
], ids=["event", "forced", "certificate", "requeued"])
def test_every_kind_of_message_round_trips(item: WorkItem) -> None:
    assert decode(item.encode()) == item


def test_an_event_id_the_schema_cannot_hold_is_left_out_rather_than_poisoning_the_message() -> None:
    item = password_item(REGISTRY, "ci-pull", "event", NOW, event_id="id with spaces and é")

    assert item.event_id is None and decode(item.encode()) == item


def test_a_message_holds_no_secret_only_names_dates_and_flags() -> None:
    document = json.loads(password_item(REGISTRY, "ci-pull", "timer", NOW).encode())

    assert set(document) == {"schema", "kind", "registryId", "token", "source", "requestedAt", "force",
                             "eventVersion", "requeues"}


@pytest.mark.parametrize(("text", "names"), [
    ("not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    (message(schema="1"), "schema"),
    (message(extra=1), "unknown field"),
    (message(token=...), "missing field(s) token"),
    (message(kind="revoke"), "kind"),
    (message(source="someone"), "source"),
    (message(registryId="/subscriptions/x/resourceGroups/rg"), "registryId"),
    (message(registryId=42), "registryId"),
    (message(token="x"), "token"),
    (message(token="bad_token!"), "token"),
    (message(requestedAt="yesterday"), "requestedAt"),
    (message(requestedAt="2026-12-01T06:00:00"), "requestedAt"),
    (message(force="yes"), "force"),
    (message(eventVersion="../secrets"), "eventVersion"),
    (message(requeues=-1), "requeues"),
    (message(requeues=MAX_REQUEUES + 1), "requeues"),
    (message(requeues=True), "requeues"),
    (message(kind="certificate"), "certificate"),
    (message(kind="certificate", certificate="c-1", force=True), "certificate"),
    (message(certificate="c-1"), "certificate"),
    (message(eventId="x" * 201), "eventId"),
    (message(padding="x" * MAX_MESSAGE_BYTES), "larger than"),
])
def test_a_malformed_message_is_refused_naming_what_is_wrong(text: str, names: str) -> None:
    with pytest.raises(MalformedMessage, match=names.replace("(", r"\(").replace(")", r"\)")):
        decode(text)


def test_an_unknown_schema_version_is_told_apart_from_a_malformed_message() -> None:
    with pytest.raises(UnknownSchema, match="schema version 2"):
        decode(message(schema=2, somethingNew=True))


def result(action: str, transient: bool = False, code: str | None = None) -> Result:
    return Result("contoso01", "ci-pull", action, "why", transient=transient, code=code)  # type: ignore[arg-type]


ITEM = password_item(REGISTRY, "ci-pull", "timer", NOW)


@pytest.mark.parametrize("action", ["rotated", "skipped", "drift", "refused", "waiting", "certificate-updated",
                                    "unchanged", "needs-renewal"])
def test_finished_runs_delete_their_message(action: str) -> None:
    assert dispose(result(action), ITEM, 1).action == "done"


@pytest.mark.parametrize("outcome", [result("busy", transient=True),
                                     result("failed", transient=True, code="SubscriptionRequestsThrottled"),
                                     result("failed", transient=True, code="Throttled")], ids=["busy", "arm", "kv"])
def test_busy_or_throttled_is_requeued_without_spending_a_delivery(outcome: Result) -> None:
    disposition = dispose(outcome, ITEM, MAX_DEQUEUE_COUNT)  # even on the last delivery

    assert (disposition.action, disposition.delay_seconds) == ("requeue", REQUEUE_DELAY_SECONDS)


def test_requeues_are_bounded() -> None:
    worn = WorkItem(**{**ITEM.__dict__, "requeues": MAX_REQUEUES})

    assert dispose(result("busy", True), worn, 1).action == "done"
    assert dispose(result("failed", True, "Throttled"), worn, 1).action == "poison"


def test_a_transient_failure_is_retried_until_the_last_delivery_then_poisoned_with_its_reason() -> None:
    failing = result("failed", transient=True, code="ServerBusy")

    assert [dispose(failing, ITEM, n).action for n in range(1, MAX_DEQUEUE_COUNT + 1)] == \
        ["retry"] * (MAX_DEQUEUE_COUNT - 1) + ["poison"]
    assert "why" in dispose(failing, ITEM, MAX_DEQUEUE_COUNT).reason


def test_a_permanent_failure_is_poisoned_at_once() -> None:
    assert dispose(result("failed", code="AuthorizationFailed"), ITEM, 1).action == "poison"


def test_a_poisoned_message_carries_why_and_status_reads_it_back() -> None:
    text = poison_text(ITEM.encode(), "new password1 did not log in", "Timeout", 5, NOW)

    entry = poison_entry(text, NOW)

    assert (entry.registry, entry.token, entry.kind, entry.source) == ("contoso01", "ci-pull", "password", "timer")
    assert (entry.reason, entry.code, entry.dequeue_count) == ("new password1 did not log in", "Timeout", 5)
    assert decode(text) == ITEM  # moved back to the queue by an operator, it runs again


def test_a_message_the_host_poisoned_reads_as_such_and_garbage_as_unreadable() -> None:
    host = poison_entry(ITEM.encode(), NOW)
    garbage = poison_entry("\x00not json", None)

    assert host.reason == HOST_POISONED and host.token == "ci-pull" and host.dequeue_count is None
    assert garbage.code == "malformed" and garbage.token is None
