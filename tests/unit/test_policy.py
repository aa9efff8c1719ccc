"""Unit tests for rotator.core.policy: every rule of its module docstring, table-driven, plus properties.

All times are relative to NOW; tokens and secrets come from the small builders below.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotator.core.model import (
    PASSWORD_SLOTS,
    TAG_LOGIN_SERVER,
    TAG_REGISTRY,
    TAG_RENEW_BEFORE_DAYS,
    TAG_SLOT,
    TAG_TOKEN,
    TAG_VALIDITY_DAYS,
    PasswordName,
    PasswordSlot,
    SecretState,
    TokenState,
    other_slot,
    secret_name,
)
from rotator.core.policy import Decision, Lifetimes, decide, effective_lifetimes
from rotator.core.resource_ids import RegistryId

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
NEVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # what ACR reports for "no expiry"
SKEW = timedelta(minutes=5)
DEFAULTS = Lifetimes(validity=90 * DAY, renew_before=30 * DAY, clock_skew=SKEW)
NO_SKEW = replace(DEFAULTS, clock_skew=timedelta(0))
REGISTRY = RegistryId("sub", "rg", "contoso01")
TOKEN_NAME = "ci-pull"

# --- builders -------------------------------------------------------------------------------------


def password(name: PasswordName, expiry: datetime | None = NOW + 60 * DAY,
             created: datetime | None = NOW - 30 * DAY) -> PasswordSlot:
    return PasswordSlot(name, created, expiry)


def token(*slots: PasswordSlot, enabled: bool = True) -> TokenState:
    """A token holding exactly `slots` (none: both slots empty)."""
    return TokenState(REGISTRY, "contoso01.azurecr.io", TOKEN_NAME, enabled, "Succeeded",
                      {slot.name: slot for slot in slots})


def healthy(active: PasswordName = "password1", **active_dates: datetime | None) -> TokenState:
    """Both slots hold passwords; the active one has `active_dates` (default: fresh, expiring in 60 days),
    the standby is long expired."""
    standby = password(other_slot(active), expiry=NOW - 100 * DAY, created=NOW - 190 * DAY)
    return token(password(active, **active_dates), standby)


def secret(slot: str | None = "password1", version: str | None = "v1", **tags: str | None) -> SecretState:
    """The token's managed secret with its slot tag; keyword tags (underscores for dashes) override or
    remove (None) the defaults."""
    merged: dict[str, str | None] = {TAG_REGISTRY: REGISTRY.name, TAG_TOKEN: TOKEN_NAME, TAG_SLOT: slot,
                                     TAG_LOGIN_SERVER: "contoso01.azurecr.io"}
    merged.update({name.replace("_", "-"): value for name, value in tags.items()})
    return SecretState(secret_name(REGISTRY.name, TOKEN_NAME), version,
                       {k: v for k, v in merged.items() if v is not None}, NOW + 60 * DAY, True)


def overrides(validity: str | None = None, renew_before: str | None = None) -> dict[str, str | None]:
    return {TAG_VALIDITY_DAYS.replace("-", "_"): validity, TAG_RENEW_BEFORE_DAYS.replace("-", "_"): renew_before}


def assert_rotates(decision: Decision, slot: PasswordName, reason: str, lifetimes: Lifetimes = DEFAULTS,
                   now: datetime = NOW) -> None:
    assert decision == Decision("rotate", decision.reason, slot, now + lifetimes.validity,
                                now - lifetimes.clock_skew)
    assert reason in decision.reason


def assert_skips(decision: Decision, reason: str) -> None:
    assert (decision.action, decision.slot, decision.new_expiry, decision.not_before) == ("skip", None, None, None)
    assert reason in decision.reason


# --- disabled, ownership, stale events ------------------------------------------------------------

@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("adopt", [False, True])
@pytest.mark.parametrize("state", ["managed-due", "managed-fresh", "unmanaged", "foreign-secret", "stale-event"])
def test_a_disabled_token_is_skipped_even_when_forced(state: str, adopt: bool, force: bool) -> None:
    disabled = replace(healthy(expiry=NOW - DAY if state == "managed-due" else NOW + 60 * DAY), enabled=False)
    the_secret = {"unmanaged": None, "foreign-secret": secret(acr_token="other")}.get(state, secret())
    decision = decide(disabled, the_secret, NOW, DEFAULTS, force=force, adopt=adopt,
                      event_version="v0" if state == "stale-event" else None)
    assert decision == Decision("skip", "token is disabled")


FOREIGN_SECRETS = {
    "other-registry": ({"acr_registry": "fabrikam01"}, "tagged for fabrikam01/ci-pull"),
    "other-token": ({"acr_token": "push"}, "tagged for contoso01/push"),
    "registry-tag-missing": ({"acr_registry": None}, "not managed by the rotator"),
    "token-tag-missing": ({"acr_token": None}, "not managed by the rotator"),
    "no-tags-at-all": ({"acr_registry": None, "acr_token": None, "acr_slot": None, "acr_login_server": None},
                       "not managed by the rotator"),
    "slot-tag-missing": ({"acr_slot": None}, "has slot tag None"),
    "slot-tag-unknown": ({"acr_slot": "password3"}, "has slot tag 'password3'"),
    "slot-tag-certificate": ({"acr_slot": "certificate1"}, "expected password1 or password2"),
    "slot-tag-wrong-case": ({"acr_slot": "Password1"}, "expected password1 or password2"),
    "slot-tag-empty": ({"acr_slot": ""}, "expected password1 or password2"),
}


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("event_version", [None, "v1", "v0"])
@pytest.mark.parametrize(("tags", "reason"), FOREIGN_SECRETS.values(), ids=FOREIGN_SECRETS.keys())
def test_a_secret_with_foreign_or_missing_tags_is_refused(tags: dict[str, str | None], reason: str,
                                                          event_version: str | None, force: bool) -> None:
    decision = decide(healthy(expiry=NOW - DAY), secret(**tags), NOW, DEFAULTS, force=force,
                      event_version=event_version)
    assert (decision.action, decision.slot, decision.new_expiry) == ("refuse", None, None)
    assert reason in decision.reason


@pytest.mark.parametrize("tags", [{"acr_registry": "CONTOSO01"}, {"acr_token": "CI-Pull"}])
def test_ownership_tags_compare_case_insensitively(tags: dict[str, str]) -> None:
    assert decide(healthy(), secret(**tags), NOW, DEFAULTS).action == "skip"


STALE_EVENTS = {
    "older-version": ("v1", "v0"),
    "newer-unknown-version": ("v1", "v2"),
    "secret-without-version": (None, "v1"),
}


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(("current", "event"), STALE_EVENTS.values(), ids=STALE_EVENTS.keys())
def test_an_event_for_a_version_that_is_no_longer_current_is_stale(current: str | None, event: str,
                                                                   force: bool) -> None:
    decision = decide(healthy(expiry=NOW - DAY), secret(version=current), NOW, DEFAULTS, force=force,
                      event_version=event)
    assert_skips(decision, "stale event")


def test_an_event_for_a_secret_that_no_longer_exists_is_stale() -> None:
    assert_skips(decide(token(), None, NOW, DEFAULTS, event_version="v1"), "stale event")


@pytest.mark.parametrize(("expiry", "action"), [(NOW + 10 * DAY, "rotate"), (NOW + 60 * DAY, "skip")])
def test_an_event_for_the_current_version_is_only_a_hint(expiry: datetime, action: str) -> None:
    assert decide(healthy(expiry=expiry), secret(), NOW, DEFAULTS, event_version="v1").action == action


# --- due-ness of a managed token ------------------------------------------------------------------

@pytest.mark.parametrize("active", PASSWORD_SLOTS)
@pytest.mark.parametrize("dates", [{}, {"expiry": NEVER}, {"expiry": None, "created": None}],
                         ids=["fresh", "never-expires", "no-dates"])
def test_forced_rotates_the_standby_slot(active: PasswordName, dates: dict[str, datetime | None]) -> None:
    decision = decide(healthy(active, **dates), secret(active), NOW, DEFAULTS, force=True)
    assert_rotates(decision, other_slot(active), "forced")


DUE_CASES = {
    # name: (token, active slot, reason fragment)
    "active-slot-empty": (token(password("password2")), "password1", "active slot password1 has no password"),
    "both-slots-empty": (token(), "password1", "active slot password1 has no password"),
    "active-expired-long-ago": (healthy("password2", expiry=NOW - 30 * DAY), "password2", "has expired"),
    "active-expired-a-second-ago": (healthy(expiry=NOW - SECOND), "password1", "has expired"),
    "active-expires-now": (healthy(expiry=NOW), "password1", "has expired"),
    "active-expires-within-skew": (healthy(expiry=NOW + SKEW), "password1", "has expired"),
    "active-expires-after-skew": (healthy(expiry=NOW + SKEW + SECOND), "password1", "expires within the renewal"),
    "no-dates-at-all": (healthy(expiry=None, created=None), "password1", "neither expiry nor creation time"),
    "never-expires-no-creation": (healthy(expiry=NEVER, created=None), "password1", "neither expiry nor creation"),
    "never-expires-old": (healthy(expiry=NEVER, created=NOW - 61 * DAY), "password1", "was created within"),
    "no-expiry-old": (healthy(expiry=None, created=NOW - 400 * DAY), "password1", "was created within"),
}


@pytest.mark.parametrize(("the_token", "active", "reason"), DUE_CASES.values(), ids=DUE_CASES.keys())
def test_due_rotates_the_slot_not_named_in_the_secret(the_token: TokenState, active: PasswordName,
                                                      reason: str) -> None:
    assert_rotates(decide(the_token, secret(active), NOW, DEFAULTS), other_slot(active), reason)


def window_token(basis: str, boundary: datetime) -> TokenState:
    """A token whose active password1 reaches its renewal moment (`now + skew == due`) at `boundary`."""
    if basis == "expiry":
        return healthy(expiry=boundary + DEFAULTS.renew_before)
    return healthy(expiry=NEVER if basis == "age-never" else None,
                   created=boundary - DEFAULTS.validity + DEFAULTS.renew_before)


@pytest.mark.parametrize("basis", ["expiry", "age-never", "age-none"])
@pytest.mark.parametrize("lifetimes", [DEFAULTS, NO_SKEW], ids=["skew-5min", "no-skew"])
@pytest.mark.parametrize(("offset", "action"), [(-SECOND, "skip"), (timedelta(0), "rotate"), (SECOND, "rotate")],
                         ids=["a-second-before", "at-the-boundary", "a-second-after"])
def test_renewal_window_boundary(basis: str, lifetimes: Lifetimes, offset: timedelta, action: str) -> None:
    """Due when now + skew >= expiry - renew_before (or created + validity - renew_before without expiry)."""
    now = NOW + offset
    decision = decide(window_token(basis, NOW + lifetimes.clock_skew), secret(), now, lifetimes)
    if action == "rotate":
        assert_rotates(decision, "password2", "within the renewal window", lifetimes, now)
    else:
        assert_skips(decision, f"not due until {NOW.isoformat()}")
        assert decision.due_at == NOW  # the moment it really becomes due, skew included


@pytest.mark.parametrize(("the_token", "due_at"), [
    (healthy(expiry=NOW + 60 * DAY), NOW + 30 * DAY - SKEW),
    (healthy(expiry=NEVER, created=NOW - DAY), NOW + 59 * DAY - SKEW),
    (healthy(expiry=None, created=NOW), NOW + 60 * DAY - SKEW),
], ids=["by-expiry", "by-age-never-expires", "by-age-no-expiry"])
def test_a_fresh_token_is_skipped_until_it_is_due(the_token: TokenState, due_at: datetime) -> None:
    decision = decide(the_token, secret(), NOW, DEFAULTS)
    assert_skips(decision, "not due until")
    assert decision.due_at == due_at
    assert decide(the_token, secret(), due_at, DEFAULTS).action == "rotate"


def test_the_standby_slot_state_does_not_matter() -> None:
    fresh_active = password("password1", expiry=NOW + 60 * DAY)
    for standby in (None, password("password2", NOW - 500 * DAY), password("password2", None, None)):
        the_token = token(fresh_active, *([standby] if standby else []))
        assert decide(the_token, secret(), NOW, DEFAULTS).action == "skip"


# --- adoption -------------------------------------------------------------------------------------

ADOPTION = {
    "both-empty": ((), "password1", "password1 is empty"),
    "only-password1": (("password1",), "password2", "password2 is empty"),
    "only-password2": (("password2",), "password1", "password1 is empty"),
    "both-present": (("password1", "password2"), "password2", "both slots hold passwords"),
}


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(("present", "slot", "reason"), ADOPTION.values(), ids=ADOPTION.keys())
def test_adoption_without_a_secret(present: tuple[PasswordName, ...], slot: PasswordName, reason: str,
                                   force: bool) -> None:
    the_token = token(*(password(name) for name in present))
    assert_rotates(decide(the_token, None, NOW, DEFAULTS, force=force), slot, f"adopting: {reason}")


def test_adoption_off_skips_tokens_without_a_secret() -> None:
    assert_skips(decide(token(), None, NOW, DEFAULTS, adopt=False), "ROTATOR_ADOPT_UNMANAGED=false")


def test_adoption_off_still_adopts_when_forced() -> None:
    # Not stated by the docstring ("when enabled"); the code treats --force as an explicit request.
    assert_rotates(decide(token(), None, NOW, DEFAULTS, adopt=False, force=True), "password1", "adopting")


def test_adoption_off_does_not_affect_managed_tokens() -> None:
    assert decide(healthy(expiry=NOW), secret(), NOW, DEFAULTS, adopt=False).action == "rotate"


# --- per-token overrides --------------------------------------------------------------------------

VALID_OVERRIDES = {
    "both": (overrides("10", "3"), 10, 3),
    "validity-only": (overrides("45"), 45, 30),
    "renew-before-only": (overrides(renew_before="7"), 90, 7),
    "whitespace": (overrides(" 60 ", "\t20\n"), 60, 20),
    "renew-before-zero": (overrides(renew_before="0"), 90, 0),
    "largest": (overrides("3650", "3649"), 3650, 3649),
    "smallest": (overrides("1", "0"), 1, 0),
}


@pytest.mark.parametrize(("tags", "validity", "renew_before"), VALID_OVERRIDES.values(), ids=VALID_OVERRIDES.keys())
def test_valid_overrides(tags: dict[str, str | None], validity: int, renew_before: int) -> None:
    expected = Lifetimes(validity * DAY, renew_before * DAY, SKEW)
    assert effective_lifetimes(DEFAULTS, secret(**tags)) == expected
    # They drive both due-ness and the new expiry: one second before and at the boundary.
    expiry = NOW + expected.renew_before + SKEW
    assert decide(healthy(expiry=expiry + SECOND), secret(**tags), NOW, DEFAULTS).action == "skip"
    assert_rotates(decide(healthy(expiry=expiry), secret(**tags), NOW, DEFAULTS), "password2", "", expected)


def test_no_secret_or_no_override_tags_keep_the_defaults() -> None:
    assert effective_lifetimes(DEFAULTS, None) is DEFAULTS
    assert effective_lifetimes(DEFAULTS, secret()) == DEFAULTS


INVALID_OVERRIDES = {
    "validity-not-a-number": (overrides("ninety"), f"tag {TAG_VALIDITY_DAYS}='ninety' is not a whole number"),
    "validity-fraction": (overrides("7.5"), "is not a whole number"),
    "validity-empty": (overrides(""), "is not a whole number"),
    "validity-with-unit": (overrides("90d"), "is not a whole number"),
    "renew-not-a-number": (overrides(renew_before="soon"), f"tag {TAG_RENEW_BEFORE_DAYS}='soon' is not a whole"),
    "validity-negative": (overrides("-1"), "outside 0..3650"),
    "validity-too-long": (overrides("3651"), f"tag {TAG_VALIDITY_DAYS}=3651 is outside 0..3650"),
    "renew-negative": (overrides(renew_before="-5"), f"tag {TAG_RENEW_BEFORE_DAYS}=-5 is outside"),
    "renew-too-long": (overrides("3650", "3651"), "outside 0..3650"),
    "validity-zero": (overrides("0", "0"), "must be shorter than validity (0 d)"),
    "renew-equals-validity": (overrides("10", "10"), "renew-before (10 d) must be shorter than validity (10 d)"),
    "renew-above-validity": (overrides("10", "11"), "must be shorter"),
    "validity-below-default-renew": (overrides("20"), "renew-before (30 d) must be shorter than validity (20 d)"),
    "renew-above-default-validity": (overrides(renew_before="90"), "must be shorter than validity (90 d)"),
}


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize(("tags", "reason"), INVALID_OVERRIDES.values(), ids=INVALID_OVERRIDES.keys())
def test_invalid_overrides_are_refused(tags: dict[str, str | None], reason: str, force: bool) -> None:
    problem = effective_lifetimes(DEFAULTS, secret(**tags))
    assert isinstance(problem, str)
    assert reason in problem
    decision = decide(healthy(expiry=NOW - DAY), secret(**tags), NOW, DEFAULTS, force=force)
    assert (decision.action, decision.slot) == ("refuse", None)
    assert reason in decision.reason


# --- new expiry and not-before --------------------------------------------------------------------

@pytest.mark.parametrize("lifetimes", [DEFAULTS, NO_SKEW, Lifetimes(DAY, timedelta(0), timedelta(hours=1))],
                         ids=["defaults", "no-skew", "one-day-one-hour-skew"])
@pytest.mark.parametrize(("the_token", "the_secret", "force"), [
    (healthy(), secret(), True),
    (healthy(expiry=NOW - DAY), secret(), False),
    (token(), None, False),
], ids=["forced", "expired", "adoption"])
def test_new_expiry_is_now_plus_validity_and_not_before_is_now_minus_skew(
        the_token: TokenState, the_secret: SecretState | None, force: bool, lifetimes: Lifetimes) -> None:
    decision = decide(the_token, the_secret, NOW, lifetimes, force=force)
    assert (decision.new_expiry, decision.not_before) == (NOW + lifetimes.validity, NOW - lifetimes.clock_skew)


# --- properties over random states ----------------------------------------------------------------

MOMENTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1),
                       timezones=st.just(UTC))
SLOT_STATES = st.builds(PasswordSlot, name=st.just("password1"), created=st.none() | MOMENTS,
                        expiry=st.none() | st.just(NEVER) | MOMENTS)


@st.composite
def tokens(draw: st.DrawFn) -> TokenState:
    present = draw(st.sets(st.sampled_from(PASSWORD_SLOTS)))
    slots = [replace(draw(SLOT_STATES), name=name) for name in sorted(present)]
    return token(*slots, enabled=draw(st.booleans()))


TAG_VALUES: dict[str, st.SearchStrategy[str | None]] = {
    "acr_slot": st.sampled_from(["password1", "password2"]) | st.sampled_from([None, "password3", ""]),
    "acr_registry": st.sampled_from([REGISTRY.name, REGISTRY.name.upper(), "fabrikam01", None]),
    "acr_token": st.sampled_from([TOKEN_NAME, "other", None]),
    "acr_validity_days": st.none() | st.sampled_from(["x", "-1", "3651"]) | st.integers(1, 400).map(str),
    "acr_renew_before_days": st.none() | st.sampled_from(["x", "-1"]) | st.integers(0, 400).map(str),
}
SECRETS = st.none() | st.builds(lambda version, tags: secret(version=version, **tags),
                                st.sampled_from(["v1", "v2", None]), st.fixed_dictionaries(TAG_VALUES))


@st.composite
def lifetimes_(draw: st.DrawFn) -> Lifetimes:
    validity = draw(st.integers(1, 3650))
    return Lifetimes(validity * DAY, draw(st.integers(0, validity - 1)) * DAY,
                     timedelta(seconds=draw(st.integers(0, 3600))))


@dataclass(frozen=True)
class Case:
    token: TokenState
    secret: SecretState | None
    now: datetime
    lifetimes: Lifetimes
    force: bool
    adopt: bool
    event_version: str | None

    def decide(self, now: datetime | None = None) -> Decision:
        return decide(self.token, self.secret, now or self.now, self.lifetimes, force=self.force, adopt=self.adopt,
                      event_version=self.event_version)


CASES = st.builds(Case, tokens(), SECRETS, MOMENTS, lifetimes_(), st.booleans(), st.booleans(),
                  st.sampled_from([None, None, "v1", "v2"]))


@settings(max_examples=200, deadline=None)
@given(CASES)
def test_property_the_active_slot_is_never_regenerated(case: Case) -> None:
    decision = case.decide()
    if decision.action == "rotate" and case.secret is not None:
        assert decision.slot in PASSWORD_SLOTS
        assert decision.slot != case.secret.slot


@settings(max_examples=100, deadline=None)
@given(CASES)
def test_property_decisions_are_well_formed(case: Case) -> None:
    decision = case.decide()
    if decision.action == "rotate":
        lifetimes = effective_lifetimes(case.lifetimes, case.secret)
        assert isinstance(lifetimes, Lifetimes)
        assert case.token.enabled
        assert decision.new_expiry == case.now + lifetimes.validity
        assert decision.not_before == case.now - lifetimes.clock_skew
    else:
        assert (decision.slot, decision.new_expiry, decision.not_before) == (None, None, None)
    if decision.due_at is not None:
        assert decision.action == "skip" and decision.due_at > case.now


@settings(max_examples=100, deadline=None)
@given(CASES)
def test_property_decide_is_deterministic_and_does_not_touch_its_inputs(case: Case) -> None:
    before = copy.deepcopy(case)
    assert case.decide() == case.decide() == before.decide()
    assert case == before


@settings(max_examples=100, deadline=None)
@given(CASES, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4000)))
def test_property_once_due_stays_due(case: Case, later: timedelta) -> None:
    """Due-ness is monotonic in time, and a skipped token becomes due exactly at its due_at."""
    decision = case.decide()
    if decision.action == "rotate":
        assert case.decide(now=case.now + later).action == "rotate"
    if decision.due_at is not None:
        assert case.decide(now=decision.due_at - SECOND).action == "skip"
        assert case.decide(now=decision.due_at).action == "rotate"
