"""Unit tests for rotator.core.events: the reference samples, their variants, malformed events, and fuzzing."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotator.core.events import (
    HANDLED_EVENT_TYPES,
    EventError,
    IgnoredEvent,
    VaultObjectEvent,
    parse_batch,
    parse_event,
)
from tests.conftest import REFERENCE

SAMPLES_DIR = REFERENCE / "keyvault-events"

EVENT_ID = "00eccf70-95a7-4e7c-8299-2eb17ee9ad64"
VERSION = "ee059b2bb5bc48398a53b168c6cdcb10"
NBF = datetime(2019, 5, 28, 22, 19, 40, tzinfo=UTC)  # 1559081980
EXP = datetime(2019, 5, 28, 22, 21, 42, tzinfo=UTC)  # 1559082102
VAULT_URL = "https://sample-kv.vault.azure.net"


def vault_event(event_type: str, kind: str, name: str, **overrides: Any) -> VaultObjectEvent:
    fields: dict[str, Any] = {
        "event_id": EVENT_ID,
        "event_type": f"Microsoft.KeyVault.{event_type}",
        "kind": kind,
        "vault_name": "sample-kv",
        "vault_url": VAULT_URL,
        "object_name": name,
        "version": VERSION,
        "not_before": NBF,
        "expires": EXP,
    }
    return VaultObjectEvent(**(fields | overrides))


def new_version_ignored() -> IgnoredEvent:
    return IgnoredEvent(
        EVENT_ID,
        "Microsoft.KeyVault.SecretNewVersionCreated",
        "SecretNewVersionCreated is raised by our own publishing; NearExpiry/Expired events and the scan "
        "decide rotations",
    )


SAMPLE_EXPECTATIONS: dict[str, VaultObjectEvent | IgnoredEvent] = {
    "kv_certificate_near_expiry.eventgrid.DERIVED.json": vault_event(
        "CertificateNearExpiry", "certificate", "newcert"
    ),
    "kv_certificate_new_version_created.eventgrid.DERIVED.json": vault_event(
        "CertificateNewVersionCreated", "certificate", "newcert"
    ),
    "kv_secret_expired.eventgrid.DERIVED.json": vault_event("SecretExpired", "secret", "newsecret"),
    "kv_secret_near_expiry.cloudevents.DERIVED.json": vault_event("SecretNearExpiry", "secret", "newsecret"),
    "kv_secret_near_expiry.eventgrid.DERIVED.json": vault_event("SecretNearExpiry", "secret", "newsecret"),
    "kv_secret_near_expiry.eventgrid.null-nbf.DERIVED.json": vault_event(
        "SecretNearExpiry", "secret", "newsecret", not_before=None
    ),
    "kv_secret_near_expiry.eventgrid.numeric-nbf-exp.DERIVED.json": vault_event(
        "SecretNearExpiry", "secret", "newsecret"
    ),
    "kv_secret_new_version_created.cloudevents.rest-api-specs.json": new_version_ignored(),
    "kv_secret_new_version_created.eventgrid.rest-api-specs.json": new_version_ignored(),
}


def load_sample(name: str) -> Any:
    return json.loads((SAMPLES_DIR / name).read_text())


def single(sample: Any) -> dict[str, Any]:
    """The samples are either one event or an array of one."""
    events = sample if isinstance(sample, list) else [sample]
    assert len(events) == 1
    event: dict[str, Any] = events[0]
    return event


# --- the reference samples ------------------------------------------------------------------------


def test_every_reference_sample_has_an_expectation() -> None:
    assert sorted(path.name for path in SAMPLES_DIR.glob("*.json")) == sorted(SAMPLE_EXPECTATIONS)


@pytest.mark.parametrize(("name", "expected"), SAMPLE_EXPECTATIONS.items(), ids=SAMPLE_EXPECTATIONS.keys())
def test_reference_sample(name: str, expected: VaultObjectEvent | IgnoredEvent) -> None:
    text = (SAMPLES_DIR / name).read_text()
    assert parse_batch(json.loads(text)) == [expected]
    assert parse_batch(text) == [expected]
    assert parse_batch(text.encode()) == [expected]
    assert parse_event(single(json.loads(text))) == expected


def test_handled_event_types_are_exactly_the_five_key_vault_types() -> None:
    assert HANDLED_EVENT_TYPES == (
        "Microsoft.KeyVault.SecretNearExpiry",
        "Microsoft.KeyVault.SecretExpired",
        "Microsoft.KeyVault.CertificateNewVersionCreated",
        "Microsoft.KeyVault.CertificateNearExpiry",
        "Microsoft.KeyVault.CertificateExpired",
    )


@pytest.mark.parametrize("event_type", HANDLED_EVENT_TYPES)
def test_every_handled_type_yields_a_vault_object_event_of_its_kind(event_type: str) -> None:
    kind = "secret" if ".Secret" in event_type else "certificate"
    event = base_event("eventgrid")
    event["eventType"] = event_type
    event["data"]["Id"] = event["data"]["Id"].replace("/secrets/", f"/{kind}s/")
    event["data"]["ObjectType"] = kind.capitalize()
    parsed = parse_event(event)
    assert isinstance(parsed, VaultObjectEvent)
    assert (parsed.event_type, parsed.kind) == (event_type, kind)


# --- generated variants ---------------------------------------------------------------------------

BASES = {
    "eventgrid": "kv_secret_near_expiry.eventgrid.DERIVED.json",
    "cloudevents": "kv_secret_near_expiry.cloudevents.DERIVED.json",
}
BASE_EXPECTED = vault_event("SecretNearExpiry", "secret", "newsecret")


def base_event(schema: str) -> dict[str, Any]:
    return copy.deepcopy(single(load_sample(BASES[schema])))


def type_key(event: dict[str, Any]) -> str:
    return "type" if "specversion" in event else "eventType"


def envelope_source_key(event: dict[str, Any]) -> str:
    return "source" if "specversion" in event else "topic"


def rename_keys(rename: Callable[[str], str], *, top: bool = True) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        data = {rename(key): value for key, value in event.pop("data").items()}
        if top:
            renamed = {rename(key): value for key, value in event.items()}
            event.clear()
            event.update(renamed)
        event[rename("data") if top else "data"] = data

    return apply


def camel(key: str) -> str:
    return key if key in ("NBF", "EXP") else key[0].lower() + key[1:]


def set_data(**values: Any) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        event["data"].update(values)

    return apply


def drop_data(*keys: str) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        for key in keys:
            del event["data"][key]

    return apply


def drop_envelope(*names: str) -> Callable[[dict[str, Any]], None]:
    """Drop envelope fields by role: "subject" or "source" (topic in Event Grid, source in CloudEvents)."""

    def apply(event: dict[str, Any]) -> None:
        for name in names:
            del event[envelope_source_key(event) if name == "source" else name]

    return apply


def set_type(value: str) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        event[type_key(event)] = value

    return apply


def pad_values(event: dict[str, Any]) -> None:
    for mapping in (event, event["data"]):
        for key, value in mapping.items():
            if isinstance(value, str):
                mapping[key] = f" \t{value}\r\n "


def stringify_data(event: dict[str, Any]) -> None:
    event["data"] = json.dumps(event["data"])


def both(*steps: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        for step in steps:
            step(event)

    return apply


def set_id(value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        event["id"] = value

    return apply


def duplicate_key(key: str, twin: str) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        event["data"][twin] = event["data"][key]

    return apply


OBJECT_URL = f"{VAULT_URL}/secrets/newsecret/{VERSION}"

VARIANTS: dict[str, tuple[Callable[[dict[str, Any]], None], dict[str, Any]]] = {
    # name: (change to the base event, fields of the expected event that differ from BASE_EXPECTED)
    "unchanged": (lambda event: None, {}),
    "camelCase-data-keys": (rename_keys(camel, top=False), {}),
    "lowercase-keys": (rename_keys(str.lower), {}),
    "uppercase-keys": (rename_keys(str.upper), {}),
    "whitespace-in-keys": (rename_keys(lambda key: f" {key}\t"), {}),
    "whitespace-in-values": (pad_values, {}),
    "type-lowercase": (set_type("microsoft.keyvault.secretnearexpiry"), {}),
    "type-uppercase-padded": (set_type("  MICROSOFT.KEYVAULT.SECRETNEAREXPIRY \n"), {}),
    "nbf-exp-integers": (set_data(NBF=1559081980, EXP=1559082102), {}),
    "nbf-exp-floats": (
        set_data(NBF=1559081980.0, EXP=1559082102.5),
        {"expires": EXP.replace(microsecond=500000)},
    ),
    "nbf-exp-padded-numeric-strings": (set_data(NBF=" 1559081980 ", EXP="1559082102.0"), {}),
    "nbf-exp-iso-utc": (set_data(NBF="2019-05-28T22:19:40Z", EXP="2019-05-28T22:21:42.0000000Z"), {}),
    "nbf-exp-iso-offset": (set_data(NBF="2019-05-29T00:19:40+02:00", EXP="2019-05-28T17:21:42-05:00"), {}),
    "nbf-exp-iso-naive-is-utc": (set_data(NBF="2019-05-28T22:19:40", EXP="2019-05-28 22:21:42"), {}),
    "nbf-exp-null": (set_data(NBF=None, EXP=None), {"not_before": None, "expires": None}),
    "nbf-exp-empty-strings": (set_data(NBF="", EXP="  "), {"not_before": None, "expires": None}),
    "nbf-exp-absent": (drop_data("NBF", "EXP"), {"not_before": None, "expires": None}),
    "name-only-in-subject": (drop_data("ObjectName", "Id", "Version"), {"vault_url": None, "version": None}),
    "name-only-in-id": (both(drop_data("ObjectName"), drop_envelope("subject")), {}),
    "name-only-in-subject-as-url": (
        both(drop_data("ObjectName", "Id"), lambda event: event.update(subject=OBJECT_URL)),
        {"vault_url": None},
    ),
    "version-only-in-id": (drop_data("Version"), {}),
    "id-without-version": (set_data(Id=f"{VAULT_URL}/secrets/newsecret"), {}),
    "no-version-anywhere": (
        both(drop_data("Version"), set_data(Id=f"{VAULT_URL}/secrets/newsecret")),
        {"version": None},
    ),
    "object-name-case-differs-from-id": (set_data(ObjectName="NewSecret"), {"object_name": "NewSecret"}),
    "vault-name-only-in-topic-or-source": (drop_data("VaultName"), {}),
    "vault-name-only-in-id-host": (both(drop_data("VaultName"), drop_envelope("source")), {}),
    "vault-name-uppercase": (set_data(VaultName="SAMPLE-KV"), {}),
    "devstack-id-with-port": (
        set_data(Id=f"https://127.0.0.1:8443/secrets/newsecret/{VERSION}"),
        {"vault_url": "https://127.0.0.1:8443"},
    ),
    "object-type-absent": (drop_data("ObjectType"), {}),
    "object-type-lowercase": (set_data(ObjectType="secret"), {}),
    "data-as-json-string": (stringify_data, {}),
    "numeric-event-id": (set_id(42), {"event_id": "42"}),
    "duplicate-keys-with-equal-values": (duplicate_key("VaultName", "vaultName "), {}),
    "null-subject-and-source": (
        lambda event: event.update(subject=None, **{envelope_source_key(event): None}),
        {},
    ),
    "non-string-subject-is-not-needed": (lambda event: event.update(subject=7), {}),
}


@pytest.mark.parametrize("schema", BASES)
@pytest.mark.parametrize(("change", "overrides"), VARIANTS.values(), ids=VARIANTS.keys())
def test_variant(schema: str, change: Callable[[dict[str, Any]], None], overrides: dict[str, Any]) -> None:
    event = base_event(schema)
    change(event)
    assert parse_event(event) == dataclasses.replace(BASE_EXPECTED, **overrides)


# --- malformed events -----------------------------------------------------------------------------


def remove(key: str) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        del event[key]

    return apply


MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    # name: (change to the base event, the field the error names)
    "data-missing": (remove("data"), "data"),
    "data-null": (lambda event: event.update(data=None), "data"),
    "data-array": (lambda event: event.update(data=[1, 2]), "data"),
    "data-number": (lambda event: event.update(data=3), "data"),
    "data-string-not-json": (lambda event: event.update(data="newsecret"), "data"),
    "data-string-json-array": (lambda event: event.update(data="[]"), "data"),
    "no-name-anywhere": (both(drop_data("ObjectName", "Id"), drop_envelope("subject")), "data.ObjectName"),
    "name-nowhere-usable": (
        both(drop_data("ObjectName", "Id"), lambda event: event.update(subject="not a name/at all")),
        "data.ObjectName",
    ),
    "exp-array": (set_data(EXP=[1559082102]), "data.EXP"),
    "exp-object": (set_data(EXP={"seconds": 1559082102}), "data.EXP"),
    "exp-boolean": (set_data(EXP=True), "data.EXP"),
    "exp-not-a-date": (set_data(EXP="next tuesday"), "data.EXP"),
    "exp-nan-string": (set_data(EXP="NaN"), "data.EXP"),
    "exp-infinite": (set_data(EXP=float("inf")), "data.EXP"),
    "exp-out-of-range": (set_data(EXP=10**20), "data.EXP"),
    "exp-too-big-for-float": (set_data(EXP=10**400), "data.EXP"),
    "nbf-array": (set_data(NBF=[]), "data.NBF"),
    "object-name-invalid": (set_data(ObjectName="bad/name"), "data.ObjectName"),
    "object-name-not-a-string": (set_data(ObjectName=12), "data.ObjectName"),
    "object-name-disagrees-with-id": (set_data(ObjectName="othersecret"), "data.ObjectName"),
    "version-disagrees-with-id": (set_data(Version="0" * 32), "data.Version"),
    "version-with-slash": (set_data(Version="a/b"), "data.Version"),
    "id-not-a-url": (set_data(Id="newsecret"), "data.Id"),
    "id-wrong-scheme": (
        set_data(Id=f"ftp://sample-kv.vault.azure.net/secrets/newsecret/{VERSION}"),
        "data.Id",
    ),
    "id-of-a-key": (set_data(Id=f"{VAULT_URL}/keys/newsecret/{VERSION}"), "data.Id"),
    "id-too-deep": (set_data(Id=f"{VAULT_URL}/secrets/newsecret/{VERSION}/extra"), "data.Id"),
    "id-not-a-string": (set_data(Id=["x"]), "data.Id"),
    "object-type-mismatch": (set_data(ObjectType="Certificate"), "data.ObjectType"),
    "vault-name-not-a-string": (set_data(VaultName=5), "data.VaultName"),
    "vault-name-invalid": (set_data(VaultName="sample kv"), "data.VaultName"),
    "no-vault-anywhere": (
        both(
            drop_data("VaultName"),
            drop_envelope("source"),
            set_data(Id=f"https://127.0.0.1:8443/secrets/newsecret/{VERSION}"),
        ),
        "data.VaultName",
    ),
    "conflicting-duplicate-keys": (set_data(vaultName="other-kv"), "data.VaultName"),
    "id-missing": (remove("id"), "id"),
    "id-blank": (set_id("  "), "id"),
    "id-array": (set_id([1]), "id"),
}


@pytest.mark.parametrize("schema", BASES)
@pytest.mark.parametrize(("change", "field"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_event_names_the_field(
    schema: str, change: Callable[[dict[str, Any]], None], field: str
) -> None:
    event = base_event(schema)
    change(event)
    with pytest.raises(EventError) as caught:
        parse_event(event)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert [type(item) for item in parse_batch([event])] == [EventError]


@pytest.mark.parametrize(
    ("schema", "field"),
    [("eventgrid", "eventType"), ("cloudevents", "type")],
    ids=["eventgrid", "cloudevents"],
)
@pytest.mark.parametrize("value", [None, "", "   ", 7, ["Microsoft.KeyVault.SecretNearExpiry"]], ids=repr)
def test_missing_or_bad_event_type_names_the_schema_field(schema: str, field: str, value: Any) -> None:
    event = base_event(schema)
    event[type_key(event)] = value
    with pytest.raises(EventError) as caught:
        parse_event(event)
    assert caught.value.field == field


@pytest.mark.parametrize("raw", [None, [], "event", 1], ids=repr)
def test_an_event_that_is_not_an_object_is_malformed(raw: Any) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(raw)
    assert caught.value.field == "event"


# --- ignored events -------------------------------------------------------------------------------


def kv(name: str) -> str:
    return f"Microsoft.KeyVault.{name}"


IGNORED: dict[str, tuple[str, str, str | None]] = {
    # name: (event type as sent, text the reason contains, type reported when not the type sent)
    "secret-new-version": (kv("SecretNewVersionCreated"), "our own publishing", None),
    "secret-new-version-odd-case": (
        "  microsoft.keyvault.SECRETNEWVERSIONCREATED ",
        "our own publishing",
        kv("SecretNewVersionCreated"),
    ),
    "key-near-expiry": (kv("KeyNearExpiry"), "keys are not managed", None),
    "key-new-version": (kv("KeyNewVersionCreated"), "keys are not managed", None),
    "key-expired": (kv("KeyExpired"), "keys are not managed", None),
    "access-policy": (kv("VaultAccessPolicyChanged"), "access policy", None),
    "future-key-vault-type": (kv("SomethingNew"), "Key Vault event the rotator does not handle", None),
    "subscription-validation": ("Microsoft.EventGrid.SubscriptionValidationEvent", "trigger binding", None),
    "subscription-deleted": ("Microsoft.EventGrid.SubscriptionDeletedEvent", "lifecycle", None),
    "storage-event": ("Microsoft.Storage.BlobCreated", "not a Key Vault event", None),
    "type-with-newlines": (
        "Evil.Type\nFAKE LOG LINE\r\n",
        "not a Key Vault event",
        "Evil.Type FAKE LOG LINE",
    ),
}


@pytest.mark.parametrize("schema", BASES)
@pytest.mark.parametrize(("sent", "reason", "reported"), IGNORED.values(), ids=IGNORED.keys())
def test_ignored_event(schema: str, sent: str, reason: str, reported: str | None) -> None:
    event = base_event(schema)
    set_type(sent)(event)
    parsed = parse_event(event)
    assert isinstance(parsed, IgnoredEvent)
    assert (parsed.event_id, parsed.event_type) == (EVENT_ID, reported or sent)
    assert reason in parsed.reason
    assert "\n" not in parsed.reason and "\r" not in parsed.reason


def test_subscription_validation_event_as_event_grid_sends_it() -> None:
    validation = {
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": "/subscriptions/xxx/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/sample-kv",
        "subject": "",
        "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://x"},
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2018-01-25T22:12:19.4556811Z",
        "metadataVersion": "1",
        "dataVersion": "1",
    }
    parsed = parse_event(validation)
    assert isinstance(parsed, IgnoredEvent)
    assert parsed.event_type == "Microsoft.EventGrid.SubscriptionValidationEvent"


@pytest.mark.parametrize(
    "change",
    [remove("data"), lambda event: event.update(data="garbage"), remove("id"), set_id([1])],
    ids=["no-data", "garbage-data", "no-id", "bad-id"],
)
def test_ignored_types_are_not_validated(change: Callable[[dict[str, Any]], None]) -> None:
    """A malformed event we would ignore anyway is not worth an error."""
    event = single(load_sample("kv_secret_new_version_created.eventgrid.rest-api-specs.json"))
    change(event)
    parsed = parse_event(event)
    assert isinstance(parsed, IgnoredEvent)
    assert parsed.event_id in (EVENT_ID, None)


def test_unknown_type_is_shortened_for_the_log() -> None:
    event = base_event("eventgrid")
    event["eventType"] = "X" * 1000
    parsed = parse_event(event)
    assert isinstance(parsed, IgnoredEvent)
    assert parsed.event_type == "X" * 200 + "..."


# --- batches --------------------------------------------------------------------------------------


def test_batch_keeps_order_and_isolates_malformed_events() -> None:
    good = base_event("eventgrid")
    ignored = single(load_sample("kv_secret_new_version_created.eventgrid.rest-api-specs.json"))
    bad = base_event("cloudevents")
    del bad["data"]
    results = parse_batch([good, ignored, bad, "not an event", good])
    assert [type(result) for result in results] == [
        VaultObjectEvent,
        IgnoredEvent,
        EventError,
        EventError,
        VaultObjectEvent,
    ]
    assert results[0] == results[4] == BASE_EXPECTED


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], []),
        ("[]", []),
        (b"[]", []),
        ("{not json", ["body"]),
        (b"\xff\xfe", ["body"]),
        ("[" * 100_000, ["body"]),
        ("42", ["event"]),
        (None, ["event"]),
        ([None, 1], ["event", "event"]),
    ],
    ids=[
        "empty",
        "empty-text",
        "empty-bytes",
        "bad-json",
        "bad-utf8",
        "deep-json",
        "number",
        "null",
        "non-objects",
    ],
)
def test_batch_edge_cases(body: Any, expected: list[str]) -> None:
    results = parse_batch(body)
    assert all(isinstance(result, EventError) for result in results)
    assert [result.field for result in results if isinstance(result, EventError)] == expected


def test_batch_accepts_a_single_object() -> None:
    assert parse_batch(base_event("cloudevents")) == [BASE_EXPECTED]


# --- fuzzing --------------------------------------------------------------------------------------

_KEYS = ["id", "eventType", "type", "specversion", "subject", "topic", "source", "data"]
_DATA_KEYS = ["Id", "VaultName", "ObjectType", "ObjectName", "Version", "NBF", "EXP"]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [*HANDLED_EVENT_TYPES, OBJECT_URL, "newsecret", "sample-kv", "1559082102", "2019-05-28T22:21:42Z"]
    ),
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _noisy_key(keys: list[str]) -> st.SearchStrategy[str]:
    """A known key with random casing and padding, or any text."""
    cased = st.tuples(st.sampled_from(keys), st.booleans(), st.sampled_from(["", " ", "\t"])).map(
        lambda parts: parts[2] + (parts[0].upper() if parts[1] else parts[0]) + parts[2]
    )
    return st.one_of(cased, st.text(max_size=10))


_DATA = st.one_of(_JSON, st.dictionaries(_noisy_key(_DATA_KEYS), _JSON, max_size=9))
_EVENTS = st.one_of(
    _JSON,
    st.dictionaries(_noisy_key(_KEYS), st.one_of(_JSON, _DATA), max_size=10),
    st.fixed_dictionaries(
        {"id": _SCALARS, "eventType": st.sampled_from(HANDLED_EVENT_TYPES), "data": _DATA},
        optional={"subject": _SCALARS, "topic": _SCALARS, "specversion": st.just("1.0")},
    ),
)


@settings(max_examples=200, deadline=None)
@given(_EVENTS)
def test_fuzz_parse_event_raises_only_event_error(raw: Any) -> None:
    try:
        result = parse_event(raw)
    except EventError as error:
        assert error.field and str(error).startswith(error.field)
        return
    assert isinstance(result, (VaultObjectEvent, IgnoredEvent))
    if isinstance(result, VaultObjectEvent):
        for moment in (result.not_before, result.expires):
            assert moment is None or moment.utcoffset() is not None


@settings(max_examples=50, deadline=None)
@given(st.lists(_EVENTS, max_size=4))
def test_fuzz_parse_batch_never_raises(body: list[Any]) -> None:
    assert len(parse_batch(body)) == len(body)


@settings(max_examples=150, deadline=None)
@given(
    schema=st.sampled_from(sorted(BASES)),
    flips=st.lists(st.booleans(), min_size=16, max_size=16),
    pads=st.lists(st.sampled_from(["", " ", "\t", "\n "]), min_size=16, max_size=16),
)
def test_fuzz_key_casing_and_padding_never_change_the_result(
    schema: str, flips: list[bool], pads: list[str]
) -> None:
    event = base_event(schema)
    noise = iter(zip(flips, pads, strict=True))

    def noisy(key: str) -> str:
        flip, pad = next(noise)
        return pad + (key.swapcase() if flip else key) + pad

    rename_keys(noisy)(event)
    assert parse_event(event) == BASE_EXPECTED
