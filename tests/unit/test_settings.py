"""Unit tests for rotator.settings: defaults, every malformed value, ROTATOR_REGISTRIES parsing.

Every test builds its environment as a plain dict: nothing reads os.environ.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from rotator.core.resource_ids import TargetScope
from rotator.settings import AZURE_ARM_ENDPOINT, SETTING_NAMES, SETTINGS, Settings, SettingsError

SUB = "00000000-1111-2222-3333-444444444444"
RG = f"/subscriptions/{SUB}/resourceGroups/rg1"
REGISTRY = f"{RG}/providers/Microsoft.ContainerRegistry/registries/contoso01"
VAULT = "https://kv-rotator.vault.azure.net/"
REQUIRED = {"ROTATOR_REGISTRIES": REGISTRY, "ROTATOR_VAULT_URL": VAULT}


def env(**overrides: str | None) -> dict[str, str]:
    """The required settings plus overrides; an override of None removes the setting."""
    merged: dict[str, str | None] = {**REQUIRED, **overrides}
    return {name: value for name, value in merged.items() if value is not None}


def load(**overrides: str | None) -> Settings:
    return Settings.from_env(env(**overrides))


def refused(name: str, **overrides: str | None) -> SettingsError:
    """Load, expect a SettingsError (exactly that type) whose message names `name`, and return it."""
    with pytest.raises(SettingsError) as caught:
        load(**overrides)
    assert type(caught.value) is SettingsError
    assert name in str(caught.value)
    return caught.value


# --- the SETTINGS table and defaults --------------------------------------------------------------

def test_settings_table_is_well_formed() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names)) == len(SETTING_NAMES)
    assert all(name.startswith("ROTATOR_") for name in names)
    assert all(s.meaning.strip() for s in SETTINGS)
    assert {s.name for s in SETTINGS if s.default is None} == set(REQUIRED)


DOCUMENTED_DEFAULTS = {
    "ROTATOR_VALIDITY_DAYS": "90",
    "ROTATOR_RENEW_BEFORE_DAYS": "30",
    "ROTATOR_MIN_OVERLAP_HOURS": "24",
    "ROTATOR_MAX_PARALLEL": "4",
    "ROTATOR_INCLUDE_TOKENS": "*",
    "ROTATOR_EXCLUDE_TOKENS": "",
    "ROTATOR_ADOPT_UNMANAGED": "true",
    "ROTATOR_VERIFY_TIMEOUT_SECONDS": "90",
    "ROTATOR_CLOCK_SKEW_SECONDS": "300",
    "ROTATOR_DOCKERCONFIGJSON": "false",
    "ROTATOR_LEASE_CONTAINER": "acr-token-rotator-locks",
    "ROTATOR_SCHEDULE": "0 0 */6 * * *",
    "ROTATOR_QUEUE": "acr-token-rotations",
    "ROTATOR_EXPIRY_ALERT_DAYS": "14",
    "ROTATOR_ARM_ENDPOINT": AZURE_ARM_ENDPOINT,
    "ROTATOR_CALL_TIMEOUT_SECONDS": "30",
    "ROTATOR_MAX_RETRY_AFTER_SECONDS": "10",
    "ROTATOR_RUN_TIMEOUT_SECONDS": "180",
    "ROTATOR_IDENTITY_CLIENT_ID": "",
}


def test_documented_defaults() -> None:
    assert {s.name: s.default for s in SETTINGS if s.default is not None} == DOCUMENTED_DEFAULTS


def test_defaults_are_the_secure_production_values() -> None:
    loaded = load()
    assert loaded == Settings(
        targets=(TargetScope(SUB, "rg1", "contoso01"),),
        vault_url=VAULT,
        validity=timedelta(days=90),
        renew_before=timedelta(days=30),
        min_overlap=timedelta(hours=24),
        max_parallel=4,
        include_tokens=("*",),
        exclude_tokens=(),
        adopt_unmanaged=True,
        verify_timeout=timedelta(seconds=90),
        clock_skew=timedelta(minutes=5),
        dockerconfigjson=False,
        lease_container="acr-token-rotator-locks",
        schedule="0 0 */6 * * *",
        arm_endpoint="https://management.azure.com",
        call_timeout=timedelta(seconds=30),
        max_retry_after=timedelta(seconds=10),
        run_timeout=timedelta(minutes=3),
        storage_connection="",
        storage_blob_url="",
    )


def test_spelling_out_every_default_changes_nothing() -> None:
    assert load(**DOCUMENTED_DEFAULTS) == load()


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_value_means_the_default(blank: str) -> None:
    assert load(**dict.fromkeys(DOCUMENTED_DEFAULTS, blank)) == load()


def test_unrelated_and_lookalike_variables_are_ignored() -> None:
    assert load(ROTATOR_VALIDITY="x", rotator_validity_days="x", PATH="/bin") == load()


def test_azure_storage_settings_are_carried_through() -> None:
    loaded = load(AzureWebJobsStorage=" UseDevelopmentStorage=true ",
                  AzureWebJobsStorage__blobServiceUri="https://acct.blob.core.windows.net")
    assert loaded.storage_connection == "UseDevelopmentStorage=true"
    assert loaded.storage_blob_url == "https://acct.blob.core.windows.net"


def test_azure_client_id_chooses_a_user_assigned_identity_and_is_optional() -> None:
    client_id = "7C9E6679-7425-40DE-944B-E07FC1F90AE7"
    assert load().identity_client_id is None and load(AZURE_CLIENT_ID=" ").identity_client_id is None
    assert load(AZURE_CLIENT_ID=client_id).identity_client_id == client_id.lower()


def test_the_rotators_own_identity_setting_wins_over_azure_client_id() -> None:
    """Every DefaultAzureCredential in a process reads AZURE_CLIENT_ID; only the rotator reads its own setting."""
    rotator, everyone = "7c9e6679-7425-40de-944b-e07fc1f90ae7", "0be7a70a-0000-4000-8000-00000000c11e"
    assert load(ROTATOR_IDENTITY_CLIENT_ID=rotator.upper()).identity_client_id == rotator
    assert load(ROTATOR_IDENTITY_CLIENT_ID=rotator, AZURE_CLIENT_ID=everyone).identity_client_id == rotator
    assert load(ROTATOR_IDENTITY_CLIENT_ID=" ", AZURE_CLIENT_ID=everyone).identity_client_id == everyone


@pytest.mark.parametrize("name", ["ROTATOR_IDENTITY_CLIENT_ID", "AZURE_CLIENT_ID"])
@pytest.mark.parametrize("bad", ["my-identity", "7c9e6679-7425-40de-944b", "7c9e6679742540de944be07fc1f90ae7x"])
def test_a_client_id_that_is_not_a_guid_is_refused(name: str, bad: str) -> None:
    assert bad in str(refused(name, **{name: bad}))


# --- good values ----------------------------------------------------------------------------------

GOOD_VALUES: list[tuple[str, str, str, Any]] = [
    ("ROTATOR_VALIDITY_DAYS", " 365 ", "validity", timedelta(days=365)),
    ("ROTATOR_VALIDITY_DAYS", "3650", "validity", timedelta(days=3650)),
    ("ROTATOR_RENEW_BEFORE_DAYS", "0", "renew_before", timedelta(0)),
    ("ROTATOR_RENEW_BEFORE_DAYS", "89", "renew_before", timedelta(days=89)),
    ("ROTATOR_MIN_OVERLAP_HOURS", "0", "min_overlap", timedelta(0)),
    ("ROTATOR_MIN_OVERLAP_HOURS", " 48 ", "min_overlap", timedelta(hours=48)),
    ("ROTATOR_MAX_PARALLEL", "1", "max_parallel", 1),
    ("ROTATOR_MAX_PARALLEL", "64", "max_parallel", 64),
    ("ROTATOR_VERIFY_TIMEOUT_SECONDS", "1", "verify_timeout", timedelta(seconds=1)),
    ("ROTATOR_VERIFY_TIMEOUT_SECONDS", "149", "verify_timeout", timedelta(seconds=149)),
    ("ROTATOR_CALL_TIMEOUT_SECONDS", "5", "call_timeout", timedelta(seconds=5)),
    ("ROTATOR_CALL_TIMEOUT_SECONDS", "60", "call_timeout", timedelta(minutes=1)),
    ("ROTATOR_MAX_RETRY_AFTER_SECONDS", "0", "max_retry_after", timedelta(0)),
    ("ROTATOR_MAX_RETRY_AFTER_SECONDS", "60", "max_retry_after", timedelta(minutes=1)),
    ("ROTATOR_RUN_TIMEOUT_SECONDS", "121", "run_timeout", timedelta(seconds=121)),
    ("ROTATOR_RUN_TIMEOUT_SECONDS", "200", "run_timeout", timedelta(seconds=200)),
    ("ROTATOR_CLOCK_SKEW_SECONDS", "0", "clock_skew", timedelta(0)),
    ("ROTATOR_CLOCK_SKEW_SECONDS", "3600", "clock_skew", timedelta(hours=1)),
    ("ROTATOR_INCLUDE_TOKENS", "ci-*, pull-?? ,[ab]x,!x", "include_tokens", ("ci-*", "pull-??", "[ab]x", "!x")),
    ("ROTATOR_INCLUDE_TOKENS", "a b\tc\nd", "include_tokens", ("a", "b", "c", "d")),
    ("ROTATOR_EXCLUDE_TOKENS", ",legacy_*,,tmp.1,", "exclude_tokens", ("legacy_*", "tmp.1")),
    ("ROTATOR_LEASE_CONTAINER", "abc", "lease_container", "abc"),
    ("ROTATOR_LEASE_CONTAINER", "a" * 63, "lease_container", "a" * 63),
    ("ROTATOR_LEASE_CONTAINER", "0-locks-9", "lease_container", "0-locks-9"),
    ("ROTATOR_QUEUE", "q" * 56, "queue", "q" * 56),
    ("ROTATOR_QUEUE", "rot-1", "queue", "rot-1"),
    ("ROTATOR_EXPIRY_ALERT_DAYS", "30", "expiry_alert", timedelta(days=30)),
    ("ROTATOR_SCHEDULE", "0 */5 * * * *", "schedule", "0 */5 * * * *"),
    ("ROTATOR_SCHEDULE", "0 30 9 * Jan Mon", "schedule", "0 30 9 * Jan Mon"),
    ("ROTATOR_SCHEDULE", "0 0 9-17 1,15 1-6/2 Mon-Fri", "schedule", "0 0 9-17 1,15 1-6/2 Mon-Fri"),
    ("ROTATOR_ARM_ENDPOINT", "https://127.0.0.1:8443/", "arm_endpoint", "https://127.0.0.1:8443"),
    ("ROTATOR_ARM_ENDPOINT", "https://management.usgovcloudapi.net", "arm_endpoint",
     "https://management.usgovcloudapi.net"),
    ("ROTATOR_VAULT_URL", "https://localhost:8443", "vault_url", "https://localhost:8443"),
    ("ROTATOR_VAULT_URL", "https://kv.vault.azure.net/path/", "vault_url", "https://kv.vault.azure.net/path/"),
    *[("ROTATOR_ADOPT_UNMANAGED", raw, "adopt_unmanaged", raw.strip().lower() in ("true", "1", "yes", "on"))
      for raw in ("true", "TRUE", " Yes ", "1", "on", "false", "False", "0", "no", "OFF")],
    *[("ROTATOR_DOCKERCONFIGJSON", raw, "dockerconfigjson", expected)
      for raw, expected in (("true", True), ("On", True), ("0", False), ("no", False))],
]


@pytest.mark.parametrize(("name", "raw", "attribute", "expected"), GOOD_VALUES,
                         ids=[f"{name}={raw!r}" for name, raw, _, _ in GOOD_VALUES])
def test_good_values(name: str, raw: str, attribute: str, expected: Any) -> None:
    loaded = load(**{name: raw})
    assert getattr(loaded, attribute) == expected
    others = {f.name for f in dataclasses.fields(Settings)} - {attribute}
    assert {a: getattr(loaded, a) for a in others} == {a: getattr(load(), a) for a in others}


@pytest.mark.parametrize("schedule", sorted({raw for name, raw, _, _ in GOOD_VALUES if name == "ROTATOR_SCHEDULE"}
                                            | {DOCUMENTED_DEFAULTS["ROTATOR_SCHEDULE"]}))
def test_accepted_schedules_are_real_six_field_crontabs(schedule: str) -> None:
    assert croniter.is_valid(schedule, second_at_beginning=True)


# --- bad values: every setting has at least one, and each error names its setting -----------------

BAD_VALUES: list[tuple[str, str]] = [
    ("ROTATOR_REGISTRIES", "contoso01"),
    ("ROTATOR_REGISTRIES", f"{RG}/providers/Microsoft.Storage/storageAccounts/contoso01"),
    ("ROTATOR_REGISTRIES", f"{REGISTRY},{RG}/providers/Microsoft.ContainerRegistry/registries/x"),
    ("ROTATOR_REGISTRIES", f"{REGISTRY};{RG}"),
    ("ROTATOR_VAULT_URL", "http://kv.vault.azure.net/"),
    ("ROTATOR_VAULT_URL", "kv.vault.azure.net"),
    ("ROTATOR_VAULT_URL", "https://"),
    ("ROTATOR_VAULT_URL", "https://kv.vault.azure.net/?x=1"),
    ("ROTATOR_VAULT_URL", "https://kv.vault.azure.net/#frag"),
    ("ROTATOR_VAULT_URL", "https://kv vault.azure.net"),
    ("ROTATOR_VAULT_URL", "ftp://kv.vault.azure.net"),
    ("ROTATOR_VALIDITY_DAYS", "ninety"),
    ("ROTATOR_VALIDITY_DAYS", "90.5"),
    ("ROTATOR_VALIDITY_DAYS", "90d"),
    ("ROTATOR_VALIDITY_DAYS", "0"),
    ("ROTATOR_VALIDITY_DAYS", "-90"),
    ("ROTATOR_VALIDITY_DAYS", "3651"),
    ("ROTATOR_VALIDITY_DAYS", "9" * 5000),
    ("ROTATOR_RENEW_BEFORE_DAYS", "-1"),
    ("ROTATOR_RENEW_BEFORE_DAYS", "thirty"),
    ("ROTATOR_RENEW_BEFORE_DAYS", "3650"),
    ("ROTATOR_MIN_OVERLAP_HOURS", "-1"),
    ("ROTATOR_MIN_OVERLAP_HOURS", "2161"),
    ("ROTATOR_MIN_OVERLAP_HOURS", "1.5"),
    ("ROTATOR_MIN_OVERLAP_HOURS", "24h"),
    ("ROTATOR_MAX_PARALLEL", "0"),
    ("ROTATOR_MAX_PARALLEL", "65"),
    ("ROTATOR_MAX_PARALLEL", "four"),
    ("ROTATOR_INCLUDE_TOKENS", "ci/*"),
    ("ROTATOR_INCLUDE_TOKENS", "tok;en"),
    ("ROTATOR_INCLUDE_TOKENS", "jeton-é"),
    ("ROTATOR_EXCLUDE_TOKENS", "legacy-*,a|b"),
    ("ROTATOR_EXCLUDE_TOKENS", "$(rm)"),
    ("ROTATOR_ADOPT_UNMANAGED", "maybe"),
    ("ROTATOR_ADOPT_UNMANAGED", "2"),
    ("ROTATOR_VERIFY_TIMEOUT_SECONDS", "0"),
    ("ROTATOR_VERIFY_TIMEOUT_SECONDS", "171"),
    ("ROTATOR_VERIFY_TIMEOUT_SECONDS", "150"),  # 150 + the 30 s call timeout leave no time to publish in 180 s
    ("ROTATOR_CALL_TIMEOUT_SECONDS", "4"),
    ("ROTATOR_CALL_TIMEOUT_SECONDS", "61"),
    ("ROTATOR_MAX_RETRY_AFTER_SECONDS", "-1"),
    ("ROTATOR_MAX_RETRY_AFTER_SECONDS", "ten"),
    ("ROTATOR_RUN_TIMEOUT_SECONDS", "201"),
    ("ROTATOR_RUN_TIMEOUT_SECONDS", "120"),  # not more than the 90 s verify timeout plus the 30 s call timeout
    ("ROTATOR_VERIFY_TIMEOUT_SECONDS", "1m"),
    ("ROTATOR_CLOCK_SKEW_SECONDS", "-1"),
    ("ROTATOR_CLOCK_SKEW_SECONDS", "3601"),
    ("ROTATOR_CLOCK_SKEW_SECONDS", "5 min"),
    ("ROTATOR_DOCKERCONFIGJSON", "enabled"),
    ("ROTATOR_LEASE_CONTAINER", "ab"),
    ("ROTATOR_LEASE_CONTAINER", "a" * 64),
    ("ROTATOR_LEASE_CONTAINER", "Locks"),
    ("ROTATOR_LEASE_CONTAINER", "-locks"),
    ("ROTATOR_LEASE_CONTAINER", "locks-"),
    ("ROTATOR_LEASE_CONTAINER", "lo--cks"),
    ("ROTATOR_LEASE_CONTAINER", "lo_cks"),
    ("ROTATOR_SCHEDULE", "0 */5 * * *"),
    ("ROTATOR_SCHEDULE", "0 0 */6 * * * *"),
    ("ROTATOR_SCHEDULE", "every six hours ok ok ok"),
    ("ROTATOR_SCHEDULE", "0 0 */x * * *"),
    ("ROTATOR_SCHEDULE", "00:05:00"),
    ("ROTATOR_QUEUE", "ab"),
    ("ROTATOR_QUEUE", "q" * 57),  # its poison queue would exceed 63 characters
    ("ROTATOR_QUEUE", "Rotations"),
    ("ROTATOR_QUEUE", "rot--ations"),
    ("ROTATOR_QUEUE", "rotations-"),
    ("ROTATOR_EXPIRY_ALERT_DAYS", "0"),
    ("ROTATOR_EXPIRY_ALERT_DAYS", "3651"),
    ("ROTATOR_EXPIRY_ALERT_DAYS", "two weeks"),
    ("ROTATOR_ARM_ENDPOINT", "http://127.0.0.1:8443"),
    ("ROTATOR_ARM_ENDPOINT", "management.azure.com"),
    ("ROTATOR_IDENTITY_CLIENT_ID", "id-rotator"),
]


def test_every_setting_has_bad_values_under_test() -> None:
    assert {name for name, _ in BAD_VALUES} == SETTING_NAMES


@pytest.mark.parametrize(("name", "raw"), BAD_VALUES, ids=[f"{name}={raw[:40]!r}" for name, raw in BAD_VALUES])
def test_a_bad_value_is_a_settings_error_naming_the_setting(name: str, raw: str) -> None:
    refused(name, **{name: raw})


@pytest.mark.parametrize("name", sorted(REQUIRED))
@pytest.mark.parametrize("value", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_required_settings(name: str, value: str | None) -> None:
    assert "required" in str(refused(name, **{name: value}))


@pytest.mark.parametrize(("validity", "renew_before"),
                         [("30", "30"), ("30", "31"), ("1", "1"), ("20", None), (None, "90")])
def test_renew_before_must_be_shorter_than_validity(validity: str | None, renew_before: str | None) -> None:
    error = refused("ROTATOR_RENEW_BEFORE_DAYS", ROTATOR_VALIDITY_DAYS=validity, ROTATOR_RENEW_BEFORE_DAYS=renew_before)
    assert "ROTATOR_VALIDITY_DAYS" in str(error)


@pytest.mark.parametrize(("validity", "renew_before"), [("31", "30"), ("1", "0"), ("3650", "3649"), ("91", None)])
def test_renew_before_just_below_validity_is_accepted(validity: str, renew_before: str | None) -> None:
    loaded = load(ROTATOR_VALIDITY_DAYS=validity, ROTATOR_RENEW_BEFORE_DAYS=renew_before)
    assert loaded.renew_before < loaded.validity


@pytest.mark.parametrize(("validity", "renew_before", "overlap"), [
    ("2", "1", "25"), ("90", "89", "48"), ("90", "30", "1441"), ("91", "90", "25")])
def test_settings_that_cannot_honour_the_overlap_window_are_refused(validity: str, renew_before: str,
                                                                    overlap: str | None) -> None:
    """A token would be due again before the credential it replaced may be invalidated."""
    error = refused("ROTATOR_MIN_OVERLAP_HOURS", ROTATOR_VALIDITY_DAYS=validity, ROTATOR_RENEW_BEFORE_DAYS=renew_before,
                    ROTATOR_MIN_OVERLAP_HOURS=overlap)
    assert "ROTATOR_VALIDITY_DAYS" in str(error) and "ROTATOR_RENEW_BEFORE_DAYS" in str(error)


@pytest.mark.parametrize(("validity", "renew_before", "overlap"), [("2", "1", "24"), ("90", "30", "1440"),
                                                                    ("1", "0", "0"), ("31", "30", None)])
def test_settings_that_just_honour_the_overlap_window_are_accepted(validity: str, renew_before: str,
                                                                   overlap: str | None) -> None:
    loaded = load(ROTATOR_VALIDITY_DAYS=validity, ROTATOR_RENEW_BEFORE_DAYS=renew_before,
                  ROTATOR_MIN_OVERLAP_HOURS=overlap)
    assert loaded.validity - loaded.renew_before >= loaded.min_overlap


@pytest.mark.parametrize(("verify", "call", "run"), [("90", "30", "120"), ("170", "30", "200"), ("1", "60", "61")])
def test_the_run_must_leave_time_to_publish_after_a_whole_verify(verify: str, call: str, run: str) -> None:
    error = refused("ROTATOR_RUN_TIMEOUT_SECONDS", ROTATOR_VERIFY_TIMEOUT_SECONDS=verify,
                    ROTATOR_CALL_TIMEOUT_SECONDS=call, ROTATOR_RUN_TIMEOUT_SECONDS=run)
    assert "ROTATOR_VERIFY_TIMEOUT_SECONDS" in str(error) and "ROTATOR_CALL_TIMEOUT_SECONDS" in str(error)


# --- ROTATOR_REGISTRIES ---------------------------------------------------------------------------

def registry(name: str, group: str = "rg1") -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.ContainerRegistry/registries/{name}"


REGISTRIES_CASES: dict[str, tuple[str, tuple[TargetScope, ...]]] = {
    "one-registry": (registry("contoso01"), (TargetScope(SUB, "rg1", "contoso01"),)),
    "resource-group": (RG, (TargetScope(SUB, "rg1"),)),
    "subscription": (f"/subscriptions/{SUB}", (TargetScope(SUB),)),
    "trailing-slashes": (f"{registry('contoso01')}/,{RG}/", (TargetScope(SUB, "rg1", "contoso01"),
                                                             TargetScope(SUB, "rg1"))),
    "comma-separated": (f"{registry('first01')},{registry('second02', 'rg2')}",
                        (TargetScope(SUB, "rg1", "first01"), TargetScope(SUB, "rg2", "second02"))),
    "whitespace-separated": (f"\n  {registry('first01')}\n\t{RG}  /subscriptions/other\n",
                             (TargetScope(SUB, "rg1", "first01"), TargetScope(SUB, "rg1"),
                              TargetScope("other"))),
    "comma-and-space-with-empties": (f" ,{registry('first01')} , ,/subscriptions/other,",
                                     (TargetScope(SUB, "rg1", "first01"), TargetScope("other"))),
    "case-insensitive-segments": (registry("Contoso01").lower().replace("contoso01", "Contoso01"),
                                  (TargetScope(SUB, "rg1", "Contoso01"),)),
}


@pytest.mark.parametrize(("raw", "expected"), REGISTRIES_CASES.values(), ids=REGISTRIES_CASES.keys())
def test_registries_parsing(raw: str, expected: tuple[TargetScope, ...]) -> None:
    assert load(ROTATOR_REGISTRIES=raw).targets == expected


def test_registry_targets_give_registry_ids() -> None:
    (target,) = load().targets
    assert str(target.registry_id()) == REGISTRY


# --- fuzz: whatever the value, the answer is Settings or SettingsError ---------------------------

@pytest.mark.parametrize("name", sorted(SETTING_NAMES))
@settings(max_examples=25, deadline=None)
@given(raw=st.text(max_size=40) | st.from_regex(r"[0-9\- ,./*a-z]{0,12}", fullmatch=True))
def test_any_value_is_accepted_or_a_settings_error_naming_the_setting(name: str, raw: str) -> None:
    try:
        load(**{name: raw})
    except SettingsError as error:
        assert type(error) is SettingsError
        assert name in str(error)
