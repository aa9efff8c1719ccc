"""Unit tests for the never-break rules of rotator.core.policy: overlap window, drift, coalescing of forced
requests, soft-deleted and foreign secrets (password and companion), and the revoke plan.

Times are relative to NOW; `published` is when the current secret version was written (the moment
the standby's credential was superseded).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotator.core.model import (
    PASSWORD_SLOTS,
    TAG_REVOKING,
    TAG_SLOT_CREATED,
    Companion,
    PasswordName,
    SecretState,
    TokenState,
    VaultFacts,
    format_time,
    other_slot,
)
from rotator.core.policy import (
    Decision,
    Forced,
    Lifetimes,
    current_is_dead,
    decide,
    effective_lifetimes,
    held_in_vault,
    plan_revoke,
    standby_free_at,
)
from tests.unit.test_policy import DAY, DEFAULTS, NOW, REGISTRY, SECOND, SKEW, TOKEN_NAME, password, secret, token

HOUR = timedelta(hours=1)
OVERLAP = DEFAULTS.min_overlap
ACTIVE_CREATED = NOW - 10 * DAY
VAULT = "kv-rotator"


def current(slot: PasswordName = "password1", published: datetime = NOW - HOUR, version: str = "v1",
            recorded: datetime | None = ACTIVE_CREATED, **tags: str | None) -> SecretState:
    """The managed secret whose current version (written at `published`) holds `slot`, with the
    `acr-slot-created` tag recording `recorded`."""
    if recorded is not None:
        tags.setdefault(TAG_SLOT_CREATED.replace("-", "_"), format_time(recorded))
    return replace(secret(slot, version, **tags), created=published)


def both(active_created: datetime = ACTIVE_CREATED, standby_created: datetime = NOW - 20 * DAY,
         standby_expiry: datetime | None = NOW + 70 * DAY, active: PasswordName = "password1") -> TokenState:
    """Both slots hold live passwords; the active one is fresh (expires in 80 days)."""
    return token(password(active, NOW + 80 * DAY, active_created),
                 password(other_slot(active), standby_expiry, standby_created))


def facts(**kwargs: object) -> VaultFacts:
    return VaultFacts(VAULT, **kwargs)  # type: ignore[arg-type]


# --- overlap --------------------------------------------------------------------------------------


def test_a_forced_rotation_waits_while_the_standby_was_current_less_than_the_overlap_ago() -> None:
    decision = decide(both(), current(published=NOW - HOUR), NOW, DEFAULTS, force=True)
    assert (decision.action, decision.slot, decision.code) == ("wait", "password2", "overlap")
    assert decision.due_at == NOW - HOUR + OVERLAP
    assert "ROTATOR_MIN_OVERLAP_HOURS (24 h)" in decision.reason and "forced" in decision.reason
    assert decision.new_expiry is None and decision.not_before is None


@pytest.mark.parametrize(("offset", "action"), [(-SECOND, "wait"), (timedelta(0), "rotate"), (SECOND, "rotate")])
def test_the_standby_becomes_rotatable_exactly_when_the_overlap_has_passed(offset: timedelta, action: str) -> None:
    published = NOW - OVERLAP - offset
    assert decide(both(), current(published=published), NOW, DEFAULTS, force=True).action == action


FREE_STANDBYS = {
    "standby-empty": token(password("password1", NOW + 80 * DAY, ACTIVE_CREATED)),
    "standby-expired": both(standby_expiry=NOW - SECOND),
    "standby-expires-now": both(standby_expiry=NOW),
    "standby-made-after-the-publish": both(standby_created=NOW - HOUR + SECOND),  # stamps are whole seconds
}


@pytest.mark.parametrize("the_token", FREE_STANDBYS.values(), ids=FREE_STANDBYS.keys())
def test_a_standby_that_holds_no_live_former_credential_is_rotated_at_once(the_token: TokenState) -> None:
    decision = decide(the_token, current(published=NOW - HOUR), NOW, DEFAULTS, force=True)
    assert (decision.action, decision.slot, decision.code) == ("rotate", "password2", None)


@pytest.mark.parametrize("before", [-SECOND / 2, timedelta(0), SECOND, SKEW])
def test_a_standby_made_before_the_publish_counts_as_maybe_current(before: timedelta) -> None:
    """Key Vault stamps the write to the second: within the second after the stamp it may still precede it."""
    the_token = both(standby_created=NOW - HOUR - before)
    assert decide(the_token, current(published=NOW - HOUR), NOW, DEFAULTS, force=True).action == "wait"


# The standby's history: which earlier versions of the secret may have held its current password.
STANDBY_CREATED = NOW - 20 * DAY
HISTORIES: dict[str, tuple[list[SecretState], bool]] = {  # versions besides the current one, held?
    "none": ([], False),
    "only-the-active-slot": ([current("password1", NOW - 100 * DAY, "v0", NOW - 100 * DAY)], False),
    "the-standby-with-its-creation": ([current("password2", NOW - 19 * DAY, "v0", STANDBY_CREATED)], True),
    "an-older-password-of-the-standby": ([current("password2", NOW - 99 * DAY, "v0", NOW - 100 * DAY)], False),
    "the-standby-without-creation-tag": ([current("password2", NOW - 19 * DAY, "v0", None)], True),
    "a-version-without-slot-tag": ([replace(secret(None, "v0"), created=NOW - 30 * DAY)], True),
}


@pytest.mark.parametrize(("earlier", "held"), HISTORIES.values(), ids=HISTORIES.keys())
def test_a_standby_no_earlier_version_held_is_rotated_at_once(earlier: list[SecretState], held: bool) -> None:
    """Adopted or published by hand while the other slot already held a password that never reached Key Vault:
    no consumer can hold it, so the overlap window protects nothing."""
    now_current = current(published=NOW - HOUR)
    the_token = both(standby_created=STANDBY_CREATED)
    decision = decide(the_token, now_current, NOW, DEFAULTS, force=True, history=[now_current, *earlier])
    if held:
        assert (decision.action, decision.code, decision.slot) == ("wait", "overlap", "password2")
    else:
        assert (decision.action, decision.slot, decision.code) == ("rotate", "password2", None)
        assert "password2 was never published in Key Vault" in decision.reason and "forced" in decision.reason


def test_without_the_history_a_standby_waits() -> None:
    assert decide(both(), current(published=NOW - HOUR), NOW, DEFAULTS, force=True).action == "wait"


def test_a_standby_without_creation_time_counts_as_held_by_any_version_of_its_slot() -> None:
    the_token = token(password("password1", NOW + 80 * DAY, ACTIVE_CREATED), password("password2", NOW + DAY, None))
    tagged = [current("password2", NOW - DAY, "v0", NOW - 30 * DAY)]
    now_current = current(published=NOW - HOUR)
    assert decide(the_token, now_current, NOW, DEFAULTS, force=True, history=tagged).action == "wait"
    assert decide(the_token, now_current, NOW, DEFAULTS, force=True, history=[now_current]).action == "rotate"


def test_the_history_is_not_needed_outside_the_window() -> None:
    """It only ever turns a wait into a rotation: a token that is not due stays skipped whatever it says."""
    fresh = token(password("password1", NOW + 80 * DAY, ACTIVE_CREATED), password("password2", NOW + DAY, NOW - DAY))
    assert decide(fresh, current(published=NOW - HOUR), NOW, DEFAULTS, history=[]).action == "skip"


def test_a_due_rotation_waits_too() -> None:
    due_soon = token(password("password1", NOW + 5 * DAY, ACTIVE_CREATED), password("password2", NOW + DAY, NOW - DAY))
    decision = decide(due_soon, current(published=NOW - HOUR), NOW, DEFAULTS)
    assert (decision.action, decision.code) == ("wait", "overlap") and "renewal window" in decision.reason


def test_no_overlap_window_rotates_at_once() -> None:
    no_overlap = replace(DEFAULTS, min_overlap=timedelta(0))
    assert decide(both(), current(published=NOW), NOW, no_overlap, force=True).action == "rotate"


def test_a_version_without_creation_time_sets_no_window() -> None:
    assert decide(both(), replace(current(), created=None), NOW, DEFAULTS, force=True).action == "rotate"


DEAD_CURRENTS = {
    "active-slot-empty": (token(password("password2", NOW + 70 * DAY, NOW - 20 * DAY)), None),
    "active-expired": (token(password("password1", NOW - SECOND, ACTIVE_CREATED),
                             password("password2", NOW + 70 * DAY, NOW - 20 * DAY)), None),
    "drift": (both(active_created=NOW - 2 * HOUR), "drift"),
}


@pytest.mark.parametrize("force", [False, True, Forced("v1")])
@pytest.mark.parametrize(("the_token", "code"), DEAD_CURRENTS.values(), ids=DEAD_CURRENTS.keys())
def test_a_dead_current_credential_is_healed_even_within_the_overlap(the_token: TokenState, code: str | None,
                                                                     force: bool | Forced) -> None:
    decision = decide(the_token, current(published=NOW - HOUR), NOW, DEFAULTS, force=force)
    assert (decision.action, decision.slot, decision.code) == ("rotate", "password2", code)


# --- drift ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("active", PASSWORD_SLOTS)
def test_drift_rotates_the_other_slot_never_the_regenerated_one(active: PasswordName) -> None:
    regenerated = NOW - 3 * DAY
    the_token = both(active_created=regenerated, active=active)
    decision = decide(the_token, current(active, published=NOW - 40 * DAY), NOW, DEFAULTS)
    assert (decision.action, decision.slot, decision.code) == ("rotate", other_slot(active), "drift")
    assert format_time(regenerated) in decision.reason and format_time(ACTIVE_CREATED) in decision.reason
    assert current_is_dead(the_token, current(active), NOW, DEFAULTS) is not None


NOT_DRIFT = {
    "tag-matches": current(),
    "no-tag (published before the tag existed)": current(recorded=None),
    "tag-unreadable": current(recorded=None, acr_slot_created="yesterday"),
    "tag-without-zone": current(recorded=None, acr_slot_created="2026-05-22T12:00:00"),
}


@pytest.mark.parametrize("the_secret", NOT_DRIFT.values(), ids=NOT_DRIFT.keys())
def test_without_a_contradicting_tag_there_is_no_drift(the_secret: SecretState) -> None:
    decision = decide(both(), replace(the_secret, created=NOW - 40 * DAY), NOW, DEFAULTS)
    assert (decision.action, decision.code) == ("skip", None)


@pytest.mark.parametrize(("difference", "drift"), [(timedelta(microseconds=999), False),
                                                   (timedelta(microseconds=-999), False),
                                                   (timedelta(milliseconds=1), True), (SECOND, True)])
def test_creation_times_compare_within_a_millisecond(difference: timedelta, drift: bool) -> None:
    """generateCredentials and token reads may print creationTime with different precision."""
    decision = decide(both(active_created=ACTIVE_CREATED + difference), current(published=NOW - 40 * DAY), NOW,
                      DEFAULTS)
    assert (decision.code == "drift") is drift


def test_an_arm_slot_without_creation_time_is_not_drift() -> None:
    the_token = token(password("password1", NOW + 80 * DAY, None), password("password2", NOW + 70 * DAY, None))
    assert decide(the_token, current(published=NOW - 40 * DAY), NOW, DEFAULTS).action == "skip"


# --- coalescing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("seen", [None, "v0"])
def test_a_forced_request_is_satisfied_by_a_version_published_after_it(seen: str | None) -> None:
    decision = decide(both(), current(version="v1", published=NOW - SECOND), NOW, DEFAULTS, force=Forced(seen))
    assert decision == Decision("skip", decision.reason, code="coalesced", version="v1")
    assert "v1" in decision.reason


def test_a_forced_request_that_saw_the_current_version_is_a_forced_request() -> None:
    old = current(version="v1", published=NOW - 40 * DAY)
    assert decide(both(), old, NOW, DEFAULTS, force=Forced("v1")).action == "rotate"
    assert decide(both(), current(version="v1"), NOW, DEFAULTS, force=Forced("v1")).code == "overlap"


def test_a_forced_request_without_any_secret_adopts() -> None:
    decision = decide(both(), None, NOW, DEFAULTS, force=Forced(None))
    assert (decision.action, decision.slot) == ("rotate", "password2")


# --- things that are not ours: soft-deleted, foreign, companion conflicts -----------------------------


@pytest.mark.parametrize("force", [False, True, Forced(None)])
@pytest.mark.parametrize("adopt", [False, True])
def test_a_soft_deleted_secret_is_refused_with_the_recover_command(force: bool | Forced, adopt: bool) -> None:
    decision = decide(both(), None, NOW, DEFAULTS, force=force, adopt=adopt, facts=facts(secret_deleted=True))
    assert (decision.action, decision.code, decision.slot) == ("refuse", "soft-deleted-secret", None)
    name = f"acr-{REGISTRY.name}-{TOKEN_NAME}"
    assert f"az keyvault secret recover --vault-name {VAULT} --name {name}" in decision.reason


def test_a_live_secret_wins_over_a_stale_deleted_flag() -> None:
    assert decide(both(), current(published=NOW - 40 * DAY), NOW, DEFAULTS,
                  facts=facts(secret_deleted=True)).action == "skip"


COMPANION = f"acr-{REGISTRY.name}-{TOKEN_NAME}-dockerconfigjson"
OURS = replace(secret(), name=COMPANION)
COMPANION_CASES = {
    "soft-deleted": (Companion(COMPANION, None, deleted=True), "soft-deleted-secret", "secret recover"),
    "untagged": (Companion(COMPANION, replace(OURS, tags={"owner": "team-x"})), "foreign-secret", "has no acr-"),
    "other-token": (Companion(COMPANION, replace(secret(acr_token="ci-pull-dockerconfigjson"), name=COMPANION)),
                    "foreign-secret", "tagged for contoso01/ci-pull-dockerconfigjson"),
    "another-tokens-name": (Companion(COMPANION, None, claimed_by="ci-pull-dockerconfigjson"), "companion-conflict",
                            "password secret name of token ci-pull-dockerconfigjson"),
}


@pytest.mark.parametrize("the_secret", [None, "managed"])
@pytest.mark.parametrize(("companion", "code", "reason"), COMPANION_CASES.values(), ids=COMPANION_CASES.keys())
def test_a_companion_name_that_is_not_ours_refuses_the_whole_token(companion: Companion, code: str, reason: str,
                                                                   the_secret: str | None) -> None:
    existing = current(published=NOW - 40 * DAY) if the_secret else None
    decision = decide(both(), existing, NOW, DEFAULTS, force=True, facts=facts(companion=companion))
    assert (decision.action, decision.code) == ("refuse", code)
    assert reason in decision.reason


@pytest.mark.parametrize("companion", [Companion(COMPANION, None), Companion(COMPANION, OURS)])
def test_an_absent_or_own_companion_is_fine(companion: Companion) -> None:
    decision = decide(both(), current(published=NOW - 40 * DAY), NOW, DEFAULTS, force=True,
                      facts=facts(companion=companion))
    assert decision.action == "rotate"


def test_a_disabled_token_is_skipped_before_anything_is_refused() -> None:
    disabled = replace(both(), enabled=False)
    assert decide(disabled, None, NOW, DEFAULTS, facts=facts(secret_deleted=True)).action == "skip"


def test_override_tags_that_cut_the_overlap_short_are_refused() -> None:
    tags = {"acr_validity_days": "10", "acr_renew_before_days": "10"}
    assert "must be shorter" in str(effective_lifetimes(DEFAULTS, secret(**tags)))
    long_overlap = replace(DEFAULTS, min_overlap=3 * DAY)
    problem = effective_lifetimes(long_overlap, secret(acr_validity_days="10", acr_renew_before_days="8"))
    assert isinstance(problem, str) and "ROTATOR_MIN_OVERLAP_HOURS (72 h)" in problem
    decision = decide(both(), current(acr_validity_days="10", acr_renew_before_days="8"), NOW, long_overlap)
    assert (decision.action, decision.code) == ("refuse", "invalid-override")
    assert isinstance(effective_lifetimes(long_overlap, secret(acr_validity_days="10", acr_renew_before_days="7")),
                      Lifetimes)


# --- revoke -----------------------------------------------------------------------------------------

REVOKES = {
    # name: (token, secret, --slot, (action, generate, remove, code))
    "default-revokes-the-current": (both(), current(), None, ("revoke", "password2", "password1", None)),
    "active-named": (both(), current(), "password1", ("revoke", "password2", "password1", None)),
    "standby-named": (both(), current(), "password2", ("revoke", None, "password2", None)),
    "standby-named-but-current-dead": (both(active_created=NOW - HOUR), current(), "password2",
                                       ("revoke", "password1", "password2", None)),
    "standby-empty": (token(password("password1", NOW + 80 * DAY, ACTIVE_CREATED)), current(), "password2",
                      ("skip", None, None, "nothing-to-revoke")),
    "no-secret": (both(), None, None, ("revoke", "password2", "password1", None)),
    "no-secret-slot-named": (both(), None, "password2", ("revoke", "password1", "password2", None)),
    "interrupted": (both(active="password2", standby_created=NOW - 20 * DAY), current("password2", published=NOW - HOUR,
                                                                   acr_revoking="password1", recorded=None),
                    None, ("revoke", None, "password1", None)),
    "interrupted-slot-named": (both(), current("password2", acr_revoking="password1", recorded=None), "password1",
                               ("revoke", None, "password1", None)),
    "finished-earlier": (token(password("password2", NOW + 80 * DAY, NOW - 2 * HOUR)),
                         current("password2", acr_revoking="password1", recorded=None), None,
                         ("revoke", "password1", "password2", None)),
    "removed-slot-regenerated-since": (both(active="password2", standby_created=NOW - HOUR + SKEW + SECOND),
                                       current("password2", published=NOW - HOUR, acr_revoking="password1",
                                               recorded=None), None, ("revoke", "password1", "password2", None)),
    "disabled": (replace(both(), enabled=False), current(), None, ("refuse", None, None, "token-disabled")),
    "foreign": (both(), secret(acr_token="other"), None, ("refuse", None, None, "foreign-secret")),
}


@pytest.mark.parametrize(("the_token", "the_secret", "slot", "expected"), REVOKES.values(), ids=REVOKES.keys())
def test_revoke_plans(the_token: TokenState, the_secret: SecretState | None, slot: PasswordName | None,
                      expected: tuple[str, str | None, str | None, str | None]) -> None:
    plan = plan_revoke(the_token, the_secret, NOW, DEFAULTS, slot=slot)
    assert (plan.action, plan.generate, plan.remove, plan.code) == expected
    if plan.generate:
        assert (plan.new_expiry, plan.not_before) == (NOW + DEFAULTS.validity, NOW - DEFAULTS.clock_skew)


def test_revoke_ignores_the_overlap_window() -> None:
    assert decide(both(), current(published=NOW), NOW, DEFAULTS, force=True).action == "wait"
    assert plan_revoke(both(), current(published=NOW), NOW, DEFAULTS).generate == "password2"


def test_revoke_refuses_a_soft_deleted_secret() -> None:
    plan = plan_revoke(both(), None, NOW, DEFAULTS, facts=facts(secret_deleted=True))
    assert (plan.action, plan.code) == ("refuse", "soft-deleted-secret")


def test_the_revoking_tag_is_a_known_tag() -> None:
    assert TAG_REVOKING == "acr-revoking"


# --- properties -------------------------------------------------------------------------------------

MOMENTS = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 1)).map(
    lambda moment: moment.replace(tzinfo=NOW.tzinfo))
MAYBE = st.none() | MOMENTS


@st.composite
def situations(draw: st.DrawFn) -> tuple[TokenState, SecretState, datetime, bool | Forced]:
    slots = [password(name, draw(MAYBE), draw(MAYBE)) for name in PASSWORD_SLOTS if draw(st.booleans())]
    the_secret = current(draw(st.sampled_from(PASSWORD_SLOTS)), draw(MOMENTS), draw(st.sampled_from(["v1", "v2"])),
                         draw(MAYBE))
    choices: list[bool | Forced] = [False, True, Forced("v1"), Forced(None)]
    force = draw(st.sampled_from(choices))
    return token(*slots), the_secret, draw(MOMENTS), force


def earlier_version(slot: PasswordName | None, recorded: datetime | None, published: datetime) -> SecretState:
    """An earlier version of the secret holding `slot` (None: no slot tag) with `recorded` as creation tag."""
    return current(slot, published, "v0", recorded) if slot else replace(secret(None, "v0"), created=published)


@st.composite
def histories(draw: st.DrawFn, the_token: TokenState) -> list[SecretState] | None:
    """None (not listed), or earlier versions for either slot or none, whose creation tags may be a slot's live
    creation time, another moment, or missing."""
    if draw(st.booleans()):
        return None
    live = [slot.created for slot in the_token.passwords.values() if slot.created is not None]
    recorded = (st.none() | MOMENTS | st.sampled_from(live)) if live else (st.none() | MOMENTS)
    slots = st.sampled_from([*PASSWORD_SLOTS, None])
    return draw(st.lists(st.builds(earlier_version, slots, recorded, MOMENTS), max_size=3))


@settings(max_examples=300, deadline=None)
@given(situations(), st.data())
def test_property_a_standby_is_only_regenerated_outside_the_window_or_to_heal(
        situation: tuple[TokenState, SecretState, datetime, bool | Forced], data: st.DataObject) -> None:
    the_token, the_secret, now, force = situation
    history = data.draw(histories(the_token))
    decision = decide(the_token, the_secret, now, DEFAULTS, force=force, history=history)
    if decision.action == "rotate":
        assert decision.slot == other_slot(the_secret.slot or "password1")
        healing = current_is_dead(the_token, the_secret, now, DEFAULTS) is not None
        free_at = standby_free_at(the_token, the_secret, decision.slot, now, DEFAULTS)
        if not healing and free_at is not None and now < free_at:  # within the window: only if never held
            assert history is not None and not held_in_vault(history, the_token.passwords[decision.slot])
    if decision.action == "wait":
        assert decision.due_at is not None and decision.due_at > now
        assert decide(the_token, the_secret, decision.due_at, DEFAULTS, force=force).action != "wait"
        assert decision.slot is not None
        assert history is None or held_in_vault(history, the_token.passwords[decision.slot])
    if decision.code == "coalesced":
        assert isinstance(force, Forced) and force.seen_version != the_secret.version
